"""Several runs of one framework in one process: what compare.py starts once per framework.

    python -m common.batch JOBS.json

JOBS.json: {"jobs": [{"framework": "pytorch", "step": "02_multiclass", "argv": [...],
"log": "path"}, ...]}. Each job is exactly `python <framework>/<step>.py ARGV` (the same
driver, arguments and outputs), its console output written to its own log; what differs is
only that the framework and the suite are imported once, not once a run (compare.py's
docstring gives the time that saves).

A job that fails (an error, an exception) is written to its log as the script would print
it, and the next job runs; a job the process never reached (it crashed) is left to the
caller, which runs it on its own. Keras picks its backend once per process, from
KERAS_BACKEND (each job's --backend is checked against it): compare.py starts one process
per column, keras and keras-torch apart.
"""
import contextlib
import json
import sys
import traceback
from pathlib import Path


def run_job(job: dict) -> int:
    """One job, its output into its log; the exit status the script would have returned."""
    from common import driver, lessons
    with open(job["log"], "a", buffering=1) as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            module = lessons.answer(job["framework"], job["step"])
            driver.main(module.__name__, list(job["argv"]))
            return 0
        except SystemExit as e:          # a UserError: its message is in the log already
            return e.code if isinstance(e.code, int) else 1
        except KeyboardInterrupt:
            raise
        except Exception:                # what the script would print before exit 1
            traceback.print_exc()
            return 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m common.batch JOBS.json")
    jobs = json.loads(Path(argv[0]).read_text())["jobs"]
    for job in jobs:
        rc = run_job(job)
        # one line per job on this process's own stdout, for the caller
        print(json.dumps({"log": job["log"], "rc": rc}), flush=True)


if __name__ == "__main__":
    main()
