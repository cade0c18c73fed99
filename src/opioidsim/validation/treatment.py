"""Treatment validation targets (V-MAT-1, V-MAT-2, V-CM-1): virtual trials of the published designs.

Each target runs a built-in trial scenario (opioidsim.trial) — the same agent, physiology and
programme rules for every arm; the arms differ only in the medication or therapy the scenario
names — and computes the effect the way the meta-analyses pooled it: retention and
morphine-positive urine as risk ratios (Mattick et al. 2009, 2014), the voucher effect on opiate
use as Cohen's d on the share of negative urines (Prendergast et al. 2006). The reduced forms
(default test run) use small cohorts and short follow-up and check directions only (V-MAT-2: 32
subjects over four arms, so 5-11 per arm).
"""
from __future__ import annotations

from functools import lru_cache, partial

from ..scenarios import load_scenario
from .sim import Settings, settings_for

MAT1 = "trial-methadone-vs-no-substitution"
MAT2 = "trial-buprenorphine-dose"
CM1 = "trial-contingency-management"
#: the reduced forms: cohort, history and follow-up small enough for the default test run (four
#: weeks: discharge needs a week of missed days, so retention only separates after the second)
REDUCED = {"subjects": 32, "history": "7d", "follow_up": "4w"}


#: shown by `validate` while V-MAT-2 is not reproduced at full size
MAT2_GAP = ("at full size 8 mg of buprenorphine cuts illicit use more than the pooled medium-dose trials allow "
            "(tested subjects' negative urines d +0.92, 95 % CI of the pooled SMD -0.62 to +0.78); 4 mg (+0.67, "
            "low-dose CI -1.01 to +0.80), 16 mg (+1.16, CI +0.49 to +1.85) and retention (RR 1.45 / 1.73 / 1.79) "
            "are inside, as are V-MAT-1 and V-CM-1; the figures: docs/guide/06-treatment-and-trials.md")


@lru_cache(maxsize=8)
def run_trial(name: str, subjects: int | None = None, history: str | None = None, follow_up: str | None = None,
              settings: Settings = ()):
    """The trial's Dataset and outcome table (cached: several targets read one run), with
    `opioidsim validate --set`'s settings (a course reads them all) if given."""
    from ..trial.simulate import simulate_trial
    from ..trial.stats import trial_outcomes

    sc = load_scenario(name)
    if subjects is not None:
        sc = sc.with_cohort(subjects=subjects)
    sc = sc.with_course(**{k: v for k, v in (("history", history), ("follow_up", follow_up)) if v is not None})
    if settings:
        sc = sc.with_parameters(settings_for(settings, "course"))
    ds = simulate_trial(sc)
    return ds, trial_outcomes(ds)


def _row(table, outcome: str, arm: str, measure: str | None = None):
    sel = table[(table.outcome == outcome) & (table.arm == arm)]
    if measure is not None:
        sel = sel[sel.measure == measure]
    return sel.iloc[0]


def mat1(reduced: bool = False, settings: Settings = ()):
    from .targets import Outcome

    ds, t = run_trial(MAT1, **(REDUCED if reduced else {}), settings=settings)
    ret = _row(t, "retention", "methadone", "RR")
    use = _row(t, "urine_positive_final", "methadone", "RR")
    if reduced:
        ok = ret.value_arm > ret.value_control and use.value_arm <= use.value_control
    else:
        ok = 2.5 <= ret.estimate <= 6.5 and 0.5 <= use.estimate <= 0.8
    txt = (f"retention {ret.value_arm:.0%} vs {ret.value_control:.0%}: RR {ret.estimate:.2f} ({ret.lower:.2f}-"
           f"{ret.upper:.2f}); opioid-positive final urine {use.value_arm:.0%} vs {use.value_control:.0%}: RR "
           f"{use.estimate:.2f} ({use.lower:.2f}-{use.upper:.2f}); n = {ds.sizes['subject']}")
    return Outcome(txt, bool(ok), float(ret.estimate))


@lru_cache(maxsize=1)
def mat2_published_intervals() -> tuple[tuple, tuple]:
    """The pooled 95 % CIs of Mattick 2014 for the built-in design's low, medium and high arms (in
    that order), as its [[trial.published]] entries give them: retention RR, and d of negative
    urines (the review's SMD of morphine-positive urines with its sign turned)."""
    trial = load_scenario(MAT2).trial
    ci = {(p.outcome, p.arm): (p.lower, p.upper) for p in trial.published}
    arms = [a.name for a in trial.arms[1:]]
    return (tuple(ci[("retention", a)] for a in arms), tuple(ci[("urine_negative_proportion", a)] for a in arms))


def mat2_inside_published(retention_rr, negative_urine_d) -> bool:
    """V-MAT-2's full form: the low, medium and high arms' (in that order) retention RR and d of
    negative urines each inside the pooled 95 % CI of its dose band, and retention no lower at the
    highest dose than at the lowest. "Only >= 16 mg cuts use" is the review's reading of those
    intervals: the low and medium bands' include 0. Whether the model's own trial can tell a dose
    from placebo turns on its cohort size, so its estimates are held to the published intervals."""
    rr, d = list(retention_rr), list(negative_urine_d)
    rr_ci, d_ci = mat2_published_intervals()
    return bool(len(rr) == len(d) == len(rr_ci) == 3 and rr[-1] >= rr[0]
                and all(lo <= r <= hi for r, (lo, hi) in zip(rr, rr_ci))
                and all(lo <= x <= hi for x, (lo, hi) in zip(d, d_ci)))


def mat2(reduced: bool = False, settings: Settings = ()):
    from .targets import Outcome

    ds, t = run_trial(MAT2, **(REDUCED if reduced else {}), settings=settings)
    arms = [a for a in ds.attrs["arms"].split(",")[1:]]
    ret = {a: _row(t, "retention", a, "RR") for a in arms}
    use = {a: _row(t, "urine_negative_proportion", a) for a in arms}
    final = {a: _row(t, "urine_positive_final", a, "RR") for a in arms}
    high = arms[-1]
    if reduced:
        # the highest dose retains at least as many as placebo and leaves fewer opioid-positive final
        # urines (a missed one counts as positive). Not the d of the full form: at four weeks from a
        # week of use it turns on the handful of tested placebo patients, among them those who
        # abstain from the start (docs/guide/06-treatment-and-trials.md), and its sign changed
        # with the cohort's seed (seeds 8-12: negative at one before stop 38, at four since)
        ok = ret[high].value_arm >= ret[high].value_control and final[high].value_arm < final[high].value_control
    else:
        ok = mat2_inside_published([ret[a].estimate for a in arms], [use[a].estimate for a in arms])
    txt = "; ".join(f"{a}: retention RR {ret[a].estimate:.2f} ({ret[a].lower:.2f}-{ret[a].upper:.2f}), "
                    f"negative urines d {use[a].estimate:+.2f} ({use[a].lower:+.2f} to {use[a].upper:+.2f}), "
                    f"positive final urine {final[a].value_arm:.0%} vs {final[a].value_control:.0%}"
                    for a in arms) + f"; n = {ds.sizes['subject']}"
    return Outcome(txt, bool(ok), float(ret[high].estimate))


def cm1(reduced: bool = False, settings: Settings = ()):
    from .targets import Outcome

    ds, t = run_trial(CM1, **(REDUCED if reduced else {}), settings=settings)
    arm = ds.attrs["arms"].split(",")[1]
    d = _row(t, "urine_negative_proportion", arm)
    ok = d.estimate > 0 if reduced else 0.4 <= d.estimate <= 0.9
    txt = (f"negative urines {d.value_arm:.0%} vs {d.value_control:.0%} per subject: d {d.estimate:.2f} "
           f"({d.lower:.2f}-{d.upper:.2f}); n = {ds.sizes['subject']}")
    return Outcome(txt, bool(ok), float(d.estimate))


def treatment_targets():
    from .targets import Target

    rr_ci, d_ci = mat2_published_intervals()
    return (
        Target("V-MAT-1", "methadone maintenance vs no substitution: retention and heroin use",
               "retention RR ≈ 4.4 (accept 2.5-6.5); heroin use RR ≈ 0.66 (0.5-0.8)",
               "Mattick RP et al. 2009 Cochrane CD002209", mat1,
               slow=True, reduced=partial(mat1, reduced=True), reads="course"),
        Target("V-MAT-2", "buprenorphine vs placebo by dose: retention, illicit use",
               "retention RR ≈ 1.5 (2-6 mg), 1.7 (7-15 mg), 1.8 (≥ 16 mg); only ≥ 16 mg cuts illicit use "
               f"(each dose inside its band's pooled 95 % CI: RR {' / '.join(f'{lo:.2f}-{hi:.2f}' for lo, hi in rr_ci)}; "
               f"negative-urine d {' / '.join(f'{lo:+.2f} to {hi:+.2f}' for lo, hi in d_ci)})",
               "Mattick RP et al. 2014 Cochrane CD002207", mat2,
               slow=True, reduced=partial(mat2, reduced=True), known_gap=MAT2_GAP,
               gap_at_full_size_only=True, reads="course"),
        Target("V-CM-1", "contingency management effect on opiate use", "d ≈ 0.65 (accept 0.4-0.9)",
               "Prendergast M et al. 2006 Addiction 101:1546", cm1,
               slow=True, reduced=partial(cm1, reduced=True), reads="course"),
    )
