"""A solve's models as the result CASE.md describes: per plan the decision, the deciding pathway, the
authorization (less what an earlier one used, where the pathway says so), each pathway's criteria with
their statuses and `because`, and the minimal missing sets; or, `lean`, what `batch --lean` writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from solver.case.blocking import blocking
from solver.text.jsontext import dump_text

if TYPE_CHECKING:
    from solver.case.models import Case
    from solver.engine.rulebase import Pathway


def minimal_sets(sets: list[dict]) -> list[dict]:
    """Drop each set whose facts strictly contain another set's facts (same
    plan), then sort by size, pathway and content.  Within one (pathway,
    options) clingo's domRec already gave minimal sets; this compares sets
    completed by different pathways or options."""
    keyed = [(frozenset(f["fact"] for f in m["facts"]), m) for m in sets]
    kept = [m for s, m in keyed if not any(o < s for o, _ in keyed)]
    return sorted(kept, key=lambda m: (len(m["facts"]), m["pathway"], dump_text(m)))


def derive_diagnosis(case: Case, icd10: list[tuple[str, str]]) -> Optional[str]:
    """CASE.md: where `diagnosis` is unknown, C91.0x gives all and C83.5x gives
    lymphoblastic_lymphoma.  Codes that point to two diagnoses derive none."""
    if case.facts.diagnosis is not None or not case.facts.icd10_codes:
        return None
    found = {dx for code in case.facts.icd10_codes for prefix, dx in icd10 if code.startswith(prefix)}
    return found.pop() if len(found) == 1 else None



class Results:
    """The part of `Solver` that builds results.  It reads the solver's decide grounding (`rules`)."""

    def authorization(self, pw: Pathway, case: Case, derived: dict) -> dict:
        """What an approval by `pw` grants: its limits, less what the case has used of an
        earlier authorization where the pathway says so (authorization_left/3: OHSU's
        renewal gives the rest of the initial 6 months and 6 cycles)."""
        if not pw.left:
            return pw.authorization_data
        out = dict(pw.authorization_data)
        for key, fact in pw.left.items():
            used = self.value(case, derived, fact)
            if used is not None and out.get(key) is not None:
                left = max(out[key] - used, 0)
                out[key] = int(left) if left == int(left) else round(left, 6)
        return out

    @staticmethod
    def value(case: Case, derived: dict, name: str):
        if name in derived:
            return derived[name]
        return getattr(case.facts, name)

    def result(self, case: Case, derived: dict, models: list, lean: bool = False,
                known: Optional[dict] = None) -> dict:
        rb = self.rules
        decision: dict[str, str] = {}
        decided_by: dict[str, list[str]] = {}
        pstatus: dict[str, str] = {}
        cstatus: dict[str, str] = {}
        notes: dict[str, list[tuple[str, str]]] = {}
        for kind, a, b in models[0]:
            if kind == "criterion_status":
                cstatus[a] = b
            elif kind == "pathway_status":
                pstatus[a] = b
            elif kind == "decision":
                decision[a] = b
            elif kind == "decided_by":
                decided_by.setdefault(a, []).append(b)
            elif kind == "note_holds":
                plan, says, source = rb.case_notes[a]
                notes.setdefault(plan, []).append((a, f"{says} ({source})"))

        missing: dict[str, list[dict]] = {}
        for model in models:
            sel = None
            need: dict[str, list] = {}
            meets: dict[str, list[str]] = {}
            for kind, a, b in model:
                if kind == "sel":
                    sel = a
                elif kind == "need":
                    need.setdefault(a, []).append(b)
                elif kind == "meets":
                    meets.setdefault(a, []).append(b)
            if sel is None:
                continue
            pw = rb.pathways[sel]
            facts = [{"fact": f, "criteria": sorted(meets[f]), **rb.facts[f].present(need[f])} for f in sorted(need)]
            missing.setdefault(pw.plan, []).append({"pathway": sel, "outcome": pw.outcome, "facts": facts})

        results = []
        for plan in sorted(decision):
            dec = decision[plan]
            by = sorted(decided_by.get(plan, []))
            out = {
                "plan": plan, "drug": case.drug, "request": case.request, "decision": dec,
                "pathway": by[0] if by else None,
                "authorization": self.authorization(rb.pathways[by[0]], case, derived) if dec == "approved" else None,
            }
            active = [pw for pw in rb.plan_pathways[plan] if pw.id in pstatus]
            if lean:
                # Lean lines (batch --lean): no citations or texts; each pathway's status and, where
                # the plan did not approve, the criteria that block it (solver/case/blocking.py: the rule
                # `report` counts by, applied here once instead of on every read).
                out["pathways"] = [{"id": pw.id, "status": pstatus[pw.id]} for pw in active]
                if dec != "approved":
                    nm, un = blocking((pw.outcome, [c for c in pw.criteria if cstatus[c] == "not_met"],
                                       [c for c in pw.criteria if cstatus[c] == "unknown"]) for pw in active)
                    out["blocking"] = {"not_met": nm, "unknown": un}
            else:
                out["policy"] = rb.documents[plan]
                said = ([rb.notes[plan]] if plan in rb.notes else []) + [t for _, t in sorted(notes.get(plan, []))]
                out["note"] = " ".join(said) if said else None
                # each criterion once: pathways share them (133 places, 58 criteria)
                judged: dict[str, dict] = {}
                for pw in active:
                    for c in pw.criteria:
                        if c not in judged:
                            judged[c] = {**rb.criteria[c].data, "status": cstatus[c],
                                         "because": rb.because(c, cstatus[c], known or {})}
                out["pathways"] = [
                    {"id": pw.id, "title": pw.title, "outcome": pw.outcome, "status": pstatus[pw.id],
                     "criteria": [judged[c] for c in pw.criteria]}
                    for pw in active]
            out["missing"] = minimal_sets(missing.get(plan, [])) if dec == "needs_info" else []
            results.append(out)
        return {"case_id": case.case_id, "rules_version": rb.version, "derived_facts": derived, "results": results}
