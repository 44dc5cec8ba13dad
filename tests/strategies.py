"""Hypothesis strategies for random *valid* cases (shared/spec/CASE.md, version 1).

Everything here is derived from `solver.models` (the fact names, their types,
their enum choices and their valid ranges), so a fact added to the model is
generated without touching this file; only the threshold values below are
hand-picked, from the bounds the rule base mentions.

    cases()            any valid case: each fact absent, null, or a value of its type
    facts()            just the `facts` object of such a case
    fact_value(name)   one valid, non-null value of one fact
    profile_cases()    realistic full profiles with some facts dropped (and the
                       plan list, drug and request sometimes varied)
    case_ids(), plan_lists()
"""

from __future__ import annotations

import math
import typing

from annotated_types import Ge, Gt, Le, Lt
from hypothesis import strategies as st

from solver.rules import declared
from solver.case.models import Facts

PLANS = tuple(declared.of().plans)
DRUGS = tuple(declared.of().drugs)
REQUESTS = declared.of().requests

# Values at and around the bounds the rules use (vocabulary.lp cuts numbers at
# exactly these), drawn most of the time; arbitrary in-range values otherwise.
THRESHOLDS: dict[str, list] = {
    "age_years": [0, 0.5, 1, 1.5, 9, 17.9, 18, 34, 52, 64.9, 65, 80, 130],
    "weight_kg": [3.5, 31, 70, 78.4, 500],
    "height_cm": [50, 150, 176, 300],
    "planned_cycles": [1, 2, 3, 4, 5, 6, 7, 8],
    "units_per_21_days": [10, 18, 30, 45, 54, 62, 63, 64, 70],
    "months_since_initial_authorization": [0, 1, 4.5, 5, 5.9, 6, 7, 8],
    "cycles_received": [0, 1, 2, 3, 4, 5, 6, 7, 8],
    "prior_systemic_therapies": [0, 1, 2, 3],
}

ICD10_CODES = ["C91.00", "C91.01", "C91.02", "c9100", "C910", "C83.50", "C83.51", "C83.5", "C92.00", "D61.9", "Z51.11"]


# ------------------------------------------------------------ model introspection


def inner_type(name: str):
    """The non-None type of a Facts field (bool, int, float, Literal[...], list[str])."""
    ann = Facts.model_fields[name].annotation
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    return args[0] if args else ann


def kind(name: str) -> str:
    """bool | enum | integer | number | list."""
    t = inner_type(name)
    if t is bool:
        return "bool"
    if t is int:
        return "integer"
    if t is float:
        return "number"
    if typing.get_origin(t) is typing.Literal:
        return "enum"
    return "list"


def enum_values(name: str) -> tuple:
    return typing.get_args(inner_type(name))


def bounds(name: str) -> dict:
    """The valid range of a number fact: {"ge"/"gt": x, "le"/"lt": y} as declared."""
    out = {}
    for m in Facts.model_fields[name].metadata:
        for cls, key in ((Ge, "ge"), (Gt, "gt"), (Le, "le"), (Lt, "lt")):
            if isinstance(m, cls):
                out[key] = getattr(m, key)
    return out


def is_valid_number(name: str, x) -> bool:
    b = bounds(name)
    if kind(name) == "integer" and (not isinstance(x, int) or isinstance(x, bool)):
        return False
    if isinstance(x, float) and not math.isfinite(x):
        return False
    return (("ge" not in b or x >= b["ge"]) and ("gt" not in b or x > b["gt"])
            and ("le" not in b or x <= b["le"]) and ("lt" not in b or x < b["lt"]))


FACT_NAMES: tuple[str, ...] = tuple(Facts.model_fields)
# facts the rule base reads as facts (icd10_codes only derives a diagnosis)
SCALAR_FACTS: tuple[str, ...] = tuple(n for n in FACT_NAMES if kind(n) != "list")


# ------------------------------------------------------------ values


def _arbitrary_number(name: str) -> st.SearchStrategy:
    b = bounds(name)
    if kind(name) == "integer":
        lo = b.get("ge", b["gt"] + 1 if "gt" in b else 0)
        hi = b.get("le", b["lt"] - 1 if "lt" in b else 1000)
        return st.integers(lo, hi)
    lo = b.get("ge", b.get("gt", 0.0))
    hi = b.get("le", b.get("lt", 1000.0))
    floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False,
                       exclude_min="gt" in b, exclude_max="lt" in b)
    ints = st.integers(math.ceil(lo) + (1 if "gt" in b and float(lo).is_integer() else 0), math.floor(hi))
    return floats | ints          # a JSON number may be an integer


def fact_value(name: str) -> st.SearchStrategy:
    """One valid, known value of fact `name`."""
    k = kind(name)
    if k == "bool":
        return st.booleans()
    if k == "enum":
        return st.sampled_from(enum_values(name))
    if k == "list":
        return st.lists(st.sampled_from(ICD10_CODES), min_size=1, max_size=3)
    arbitrary = _arbitrary_number(name)
    thresholds = [x for x in THRESHOLDS.get(name, []) if is_valid_number(name, x)]
    if not thresholds:
        return arbitrary
    pick = st.sampled_from(thresholds)
    return st.one_of(pick, pick, pick, arbitrary)    # mostly around the rules' bounds


FACT_VALUES = {n: fact_value(n) for n in FACT_NAMES}


def facts(null_rate: bool = True) -> st.SearchStrategy:
    """A `facts` object: every fact absent, null (unknown too) or a valid value."""
    def one(n):
        return st.one_of(st.none(), FACT_VALUES[n], FACT_VALUES[n], FACT_VALUES[n]) if null_rate else FACT_VALUES[n]
    return st.fixed_dictionaries({}, optional={n: one(n) for n in FACT_NAMES})


def case_ids() -> st.SearchStrategy:
    return st.one_of(st.none(), st.text(max_size=12))


def plan_lists() -> st.SearchStrategy:
    """A non-empty list of distinct plan ids, in any order."""
    return st.lists(st.sampled_from(PLANS), min_size=1, max_size=len(PLANS), unique=True)


def cases() -> st.SearchStrategy:
    """Any valid case (a dict): random drug, request, plan list and facts."""
    return st.fixed_dictionaries(
        {"facts": facts()},
        optional={
            "case_id": case_ids(),
            "drug": st.sampled_from(("inotuzumab_ozogamicin", "inotuzumab_ozogamicin", "blinatumomab")),
            "request": st.sampled_from(("initial", "initial", "continuation")),
            "plans": plan_lists(),
        },
    )


# ------------------------------------------------------------ realistic profiles

ADULT_RR = {
    "age_years": 52, "weight_kg": 78.4, "height_cm": 176, "diagnosis": "all", "b_cell_precursor": True,
    "cd22_positive": True, "ph_status": "negative", "disease_setting": "relapsed_refractory",
    "regimen": "single_agent", "planned_cycles": 4, "units_per_21_days": 30, "dose_within_label": True,
    "baseline_ecg_normal": True, "ecg_monitoring_planned": True, "prior_inotuzumab": False,
    "prior_systemic_therapies": 2, "prescriber_specialty": "hematology", "nccn_category": "2A",
}

PROFILES: list[dict] = [
    # approved by every plan
    {"drug": "inotuzumab_ozogamicin", "request": "initial", "facts": ADULT_RR},
    # frontline consolidation with rituximab (OHSU note: under 65, no comorbidities)
    {"drug": "inotuzumab_ozogamicin", "request": "initial", "facts": {
        **ADULT_RR, "age_years": 60, "disease_setting": "frontline_consolidation", "regimen": "mini_hyper_cvd",
        "with_rituximab": True, "substantial_comorbidities": False}},
    # Ph-positive with a TKI, after TKI failure
    {"drug": "inotuzumab_ozogamicin", "request": "initial", "facts": {
        **ADULT_RR, "ph_status": "positive", "regimen": "tki_combination", "tki_failure": True,
        "prior_systemic_therapies": 1}},
    # pediatric relapsed, single agent
    {"drug": "inotuzumab_ozogamicin", "request": "initial", "facts": {
        **ADULT_RR, "age_years": 9, "weight_kg": 31, "height_cm": 132, "units_per_21_days": 18,
        "prescriber_specialty": "oncology"}},
    # lymphoblastic lymphoma by ICD-10 code, compendia support
    {"drug": "inotuzumab_ozogamicin", "request": "initial", "facts": {
        **{k: v for k, v in ADULT_RR.items() if k != "diagnosis"}, "icd10_codes": ["C83.50"]}},
    # another cancer with NCCN 1
    {"drug": "inotuzumab_ozogamicin", "request": "initial", "facts": {
        "age_years": 70, "diagnosis": "other_cancer", "nccn_category": "1", "prescriber_specialty": "oncology"}},
    # MassHealth: Blincyto after complete remission
    {"drug": "blinatumomab", "request": "initial", "facts": {
        "age_years": 9, "weight_kg": 31, "diagnosis": "all", "b_cell_precursor": True,
        "complete_remission_after_initial": True, "prescriber_specialty": "oncology", "dose_within_label": True}},
    # MassHealth continuity of care
    {"drug": "inotuzumab_ozogamicin", "request": "initial", "facts": {
        "age_years": 45, "diagnosis": "all", "new_to_plan_on_treatment": True, "supplied_by_samples_or_pap": False}},
    # continuation within the authorization
    {"drug": "inotuzumab_ozogamicin", "request": "continuation", "facts": {
        "age_years": 45, "diagnosis": "all", "b_cell_precursor": True, "cd22_positive": True,
        "disease_setting": "relapsed_refractory", "cycles_received": 3, "months_since_initial_authorization": 4.5,
        "unacceptable_toxicity": False, "disease_progression": False}},
]


@st.composite
def profile_cases(draw, min_drop: int = 1) -> dict:
    """A full realistic profile with some facts dropped (absent, or null), sometimes
    one fact changed to another valid value, and sometimes a plan subset."""
    base = draw(st.sampled_from(PROFILES))
    facts = dict(base["facts"])
    names = sorted(facts)
    dropped = draw(st.lists(st.sampled_from(names), unique=True, min_size=min(min_drop, len(names)),
                            max_size=len(names)))
    as_null = draw(st.booleans())
    for n in dropped:
        if as_null:
            facts[n] = None
        else:
            del facts[n]
    if draw(st.integers(0, 3)) == 0:      # change one fact now and then
        n = draw(st.sampled_from(FACT_NAMES))
        facts[n] = draw(FACT_VALUES[n])
    case = {"case_id": f"profile-{PROFILES.index(base)}", "drug": base["drug"], "request": base["request"],
            "facts": facts}
    if draw(st.integers(0, 5)) == 0:
        case["request"] = draw(st.sampled_from(REQUESTS))
    if draw(st.booleans()):
        case["plans"] = draw(plan_lists())
    return case


def any_cases() -> st.SearchStrategy:
    """Random cases and dropped-fact profiles, about half each."""
    return st.one_of(cases(), profile_cases())


# Junk: any JSON value, values that look like facts, and case-like objects of them (a case model
# and the fast path must refuse each in one line, never crash).
JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.integers(-10**400, 10**400) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
PLAUSIBLE = st.one_of(
    *FACT_VALUES.values(), st.sampled_from(["all", "initial", "continuation", "blinatumomab", "ohsu", "true", "1",
                                            "", "NaN", "C91.00", "nope"]),
    st.lists(st.sampled_from(["ohsu", "bcbsnc", "aetna", "cvs_caremark", "ohsu"]), max_size=3),
    st.sampled_from([0, -1, 1.5, 131, 10**30, True, False, None, float("nan"), float("inf"), [], {}]),
)
ANY = JSON | PLAUSIBLE
JUNK_FACTS = st.dictionaries(st.sampled_from(FACT_NAMES + ("weight", "Age_years", "", "drug")), ANY, max_size=6)
CASE_LIKE = st.fixed_dictionaries({}, optional={
    "case_id": ANY, "drug": ANY, "request": ANY, "plans": ANY, "facts": JUNK_FACTS | ANY, "extra": ANY,
})
