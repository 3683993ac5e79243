"""Small arithmetic shared by scripts/bench_report.py and scripts/bench_scale_report.py."""


def median(xs):
    """The median of the values that are not None; None when there are none."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def r2(x):
    return None if x is None else round(x * 100) / 100


def passes(value, op, target):
    return {">=": value >= target, "<=": value <= target, "<": value < target}[op]


def dash(x):
    return "-" if x is None else x
