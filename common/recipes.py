"""--recipe: measured sets of options, one flag away (flags on the command line win).

photos: UNet on the 16 real photos (--data imori). The exercise's defaults (500
iterations, flips, 64 x 64) learn the 12 training photos by heart: training loss
0.16, validation loss 0.67 (issue #18). The recipe trains longer on photos that
change every time they are seen (common/augment.py "photos"). The learning rate
stays constant: the four optimizers keep their momentum in different forms
(PyTorch v = mu*v + g, Keras and Chainer u = mu*u - lr*g), which agree only while
lr does not change, so a schedule would make the columns differ (README, "On the
real photos", has the measurement).
"""
RECIPES = {
    "photos": {"augment": "photos", "lr_schedule": "poly", "iters": 2000, "size": 64,
               "eval_every": 100},
}


def describe(name: str) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in RECIPES[name].items())
