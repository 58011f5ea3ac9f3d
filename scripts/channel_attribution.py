"""ChannelAttribution's Markov model on aggregated paths: the independent check of attribute('markov').

Usage: channel_attribution.py PATHS.csv ORDER

Walks are not cut at the longest observed path (ChannelAttribution's default `max_step`, which
counts longer walks as non-conversions): `max_step` is set far beyond, so both sides model the
same absorbing chain.
PATHS.csv has the columns path (channels joined by ' > '), total_conversions, total_null.
Prints one line per channel: name, removal effect, attributed conversions (tab-separated), then
the model's run time in seconds on a last line starting with '#'. ChannelAttribution estimates
the removal effects by simulation (seeded), so they agree with the exact solution only within its
tolerance.
"""
import contextlib
import io
import sys
import time

import pandas as pd

with contextlib.redirect_stdout(io.StringIO()):
    import ChannelAttribution as ca


def main():
    paths = pd.read_csv(sys.argv[1])
    order = int(sys.argv[2])
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = ca.markov_model(paths, var_path="path", var_conv="total_conversions", var_null="total_null",
                                 order=order, max_step=1000, nsim_start=1e6, out_more=True, verbose=0, flg_pro=False)
    elapsed = time.perf_counter() - start
    conversions = dict(zip(result["result"]["channel_name"], result["result"]["total_conversions"]))
    for name, effect in zip(result["removal_effects"]["channel_name"], result["removal_effects"]["removal_effect"]):
        print(f"{name}\t{effect}\t{conversions[name]}")
    print(f"# {elapsed}")


if __name__ == "__main__":
    main()
