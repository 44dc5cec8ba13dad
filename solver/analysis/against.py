"""Another version of one plan's rules beside today's, in one program.

    other = OtherVersion(LOGIC_DIR, "ohsu", "/path/to/old/logic")
    other.plan          # "ohsu__against": the old version's plan id inside the program
    other.statements    # its plan file, renamed, ready for RuleBase(extra=...)

`pa-solver diff PLAN --against DIR` judges a plan in logic/ and the same plan
in DIR on one guessed profile.  Both versions must live in one program, so
the old plan file is read with clingo's parser and every name it owns is
renamed with a suffix: the ids it declares (the plan, its pathways, criteria
and option nodes: the first arguments of plan/2, pathway/3, criterion/2,
branch/2, test/2 and note/3 once grounded), its #const names and its plan-local
predicates (defined and used in a rule body there, and a name the shared
files never use; data the engine reads, such as text/2, keeps its name).  Everything
else -- fact names, values, the vocabulary's predicates -- is left alone, so
the old file is judged by today's vocabulary.lp and facts.lp: an old file
that tests a fact today's facts.lp does not declare is refused by the rule
base's own checks, naming the criterion.

Nothing here builds program text from strings: the old file's statements go
through clingo's AST, renamed node by node.
"""

from __future__ import annotations

import os
from typing import Optional

import clingo
from clingo import ast

from solver.engine.rulebase import CLINGO_ARGS
from solver.rules.loading import RuleBaseError
from solver.rules.files import lp_files, rules_version
from solver.rules.loading import loading

SUFFIX = "__against"


def _names(statements) -> set[str]:
    """Every identifier (predicate, function or constant name) in `statements`."""
    seen: set[str] = set()

    class Collect(ast.Transformer):
        def visit_Function(self, node):
            seen.add(node.name)
            return node.update(**self.visit_children(node))

        def visit_SymbolicTerm(self, node):
            sym = node.symbol
            if sym.type == clingo.SymbolType.Function:
                seen.add(sym.name)
            return node

    c = Collect()
    for s in statements:
        c(s)
    return seen


def _heads(statements) -> set[str]:
    """Predicate names in rule heads."""
    out: set[str] = set()
    for s in statements:
        if s.ast_type != ast.ASTType.Rule or s.head.ast_type != ast.ASTType.Literal:
            continue
        atom = s.head.atom
        if atom.ast_type != ast.ASTType.SymbolicAtom:
            continue
        term = atom.symbol
        for t in (term.arguments if term.ast_type == ast.ASTType.Pool else [term]):
            if t.ast_type == ast.ASTType.Function:
                out.add(t.name)
    return out


def _parse(path: str) -> list:
    stmts: list = []
    try:
        with loading(os.path.dirname(path)):        # the command line's limits, a clean stop (solver/rules/loading.py)
            ast.parse_files([path], stmts.append, logger=lambda code, msg: None)
    except RuntimeError:
        raise RuleBaseError(f"{path} does not parse as ASP") from None
    return stmts


def _plan_of(statements) -> set[str]:
    """Plan ids a file declares with a plan/2 fact."""
    out = set()
    for s in statements:
        if s.ast_type == ast.ASTType.Rule and not s.body and s.head.ast_type == ast.ASTType.Literal:
            atom = s.head.atom
            if atom.ast_type == ast.ASTType.SymbolicAtom and atom.symbol.ast_type == ast.ASTType.Function \
                    and atom.symbol.name == "plan" and len(atom.symbol.arguments) == 2:
                first = atom.symbol.arguments[0]
                if first.ast_type == ast.ASTType.Function and not first.arguments:
                    out.add(first.name)
                elif first.ast_type == ast.ASTType.SymbolicTerm and first.symbol.type == clingo.SymbolType.Function:
                    out.add(first.symbol.name)
    return out


class OtherVersion:
    """One plan's file from another rule-base folder, renamed to sit beside today's."""

    def __init__(self, logic_dir, plan: str, other_dir, label: Optional[str] = None):
        self.logic_dir = os.fspath(logic_dir)
        self.other_dir = os.fspath(other_dir)
        if not os.path.isdir(self.other_dir):
            raise RuleBaseError(f"{self.other_dir} is not a folder")
        self.plan = plan + SUFFIX
        self.label = label or os.path.basename(os.path.normpath(os.path.abspath(self.other_dir))) or "other"
        self.display = f"{plan}@{self.label}"
        self.version = rules_version(self.other_dir)     # reads and checks every file (no #script, UTF-8)

        today = [_parse(p) for p in lp_files(self.logic_dir)]
        shared_files = [(p, s) for p, s in zip(lp_files(self.logic_dir), today) if not _plan_of(s)]
        self.path = self._find(plan)
        old = _parse(self.path)
        shared = [st for _, s in shared_files for st in s]

        # The ids the old file declares, read from its ground program beside the shared files.
        ids = self._declared([p for p, _ in shared_files], self.path)
        consts = {s.name for s in old if s.ast_type == ast.ASTType.Definition}
        shared_names = _names(shared)
        # plan-local predicates: defined here and used in a body here (helpers such as OHSU's
        # initial/1), not the data predicates the engine reads (text/2, policy_document/5, ...)
        in_bodies = _names([b for s in old if s.ast_type == ast.ASTType.Rule for b in s.body])
        local = _heads(old) & in_bodies
        self.renamed = {n: n + SUFFIX for n in (ids | consts | local) - shared_names}
        if plan not in self.renamed:
            raise RuleBaseError(f"{self.path} does not declare plan {plan}")
        self.statements = [self._rename(s) for s in old]

    def _find(self, plan: str) -> str:
        """The file of the other folder that declares `plan`: <plan>.lp, else any that has plan(PLAN, _)."""
        named = os.path.join(self.other_dir, plan + ".lp")
        if os.path.isfile(named):
            return named
        for p in lp_files(self.other_dir):
            if plan in _plan_of(_parse(p)):
                return p
        raise RuleBaseError(f"{self.other_dir} has no rule file for plan {plan} (looked for {plan}.lp and plan({plan}, _))")

    @staticmethod
    def _declared(shared_paths: list[str], path: str) -> set[str]:
        messages: list[str] = []
        ctl = clingo.Control(CLINGO_ARGS, logger=lambda code, msg: messages.append(msg.strip()), message_limit=5)
        try:
            with loading(os.path.dirname(path)):
                for p in shared_paths + [path]:
                    ctl.load(p)
                ctl.ground([("base", [])])
        except RuntimeError as err:
            said = " | ".join(m.replace("\n", " ") for m in messages) or str(err)
            raise RuleBaseError(f"{path} does not load beside today's vocabulary: {said}") from None
        ids: set[str] = set()
        for name, arity, positions in (("plan", 2, (0,)), ("pathway", 3, (0,)), ("criterion", 2, (0,)),
                                       ("branch", 2, (0, 1)), ("test", 2, (0,)), ("note", 3, (0,))):
            for atom in ctl.symbolic_atoms.by_signature(name, arity):
                for i in positions:
                    sym = atom.symbol.arguments[i]
                    if sym.type == clingo.SymbolType.Function:
                        ids.add(sym.name)
        return ids

    def _rename(self, stmt):
        renamed = self.renamed

        class Rename(ast.Transformer):
            def visit_Function(self, node):
                node = node.update(**self.visit_children(node))
                return node.update(name=renamed[node.name]) if node.name in renamed else node

            def visit_SymbolicTerm(self, node):
                sym = node.symbol
                if sym.type == clingo.SymbolType.Function and sym.name in renamed:
                    return node.update(symbol=clingo.Function(renamed[sym.name], sym.arguments, sym.positive))
                return node

            def visit_Definition(self, node):
                node = node.update(**self.visit_children(node))
                return node.update(name=renamed.get(node.name, node.name))

        return Rename()(stmt)

    def original(self, name: str) -> str:
        """An id as the other version wrote it, marked with its label (for display)."""
        if name.endswith(SUFFIX):
            return f"{name[:-len(SUFFIX)]}@{self.label}"
        return name
