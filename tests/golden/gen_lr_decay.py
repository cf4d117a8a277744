# Prints the reference's LinearLrDecay values (functions.py of the authors' release, read from
# /work/ref at dev time) for the cases of tests/test_train.c's train/lr_decay table: the rate
# step() returns and the rate the optimiser holds afterwards (it is only set strictly inside
# the decay window). Run: /usr/bin/python3 tests/golden/gen_lr_decay.py [path/to/functions.py]
import sys

src = open(sys.argv[1] if len(sys.argv) > 1 else "/work/ref/functions.py").read()
ns = {}
exec(src[src.index("class LinearLrDecay"):src.index("def load_params")], ns)


class Opt:
    def __init__(self, lr):
        self.param_groups = [{"lr": lr}]


cases = [(2e-4, 0.0, 0, 250000), (1e-4, 0.0, 0, 10), (3e-4, 1e-5, 5, 17)]
steps = [0, 1, 2, 3, 5, 7, 9, 10, 11, 16, 17, 18, 100, 124999, 125000, 249995, 249999, 250000, 250001]
for start, end, ds, de in cases:
    opt = Opt(-1.0)   # -1: "never set"
    d = ns["LinearLrDecay"](opt, start, end, ds, de)
    for s in steps:
        r = d.step(s)
        print("{ %r, %r, %d, %d, %d, %.17g, %.17g }," % (start, end, ds, de, s, r, opt.param_groups[0]["lr"]))
