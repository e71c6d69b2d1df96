"""`python -m plan [STACK ...] [--format text|json] [--output PATH] [--diagram DIR]`."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pulumi

from plan import offline, plan_of
from plan.model import Plan
from plan.text import Style, render
from plan.topology import topology

EXIT_OK = 0
EXIT_AUDIT_FAILED = 1
EXIT_BAD_INPUT = 2


def parser() -> argparse.ArgumentParser:
    stacks = ", ".join(offline.stacks())
    result = argparse.ArgumentParser(
        prog="python -m plan",
        description=(
            "Evaluate the real program for each stack offline (Pulumi's mock runtime, no cloud account, no state "
            "backend, no Pulumi CLI) and show what it would create, as a preview-like tree or a JSON plan, with "
            "a zone-loss audit: each zone of each stack removed in turn, does the stack still serve?"
        ),
        epilog=(
            "exit status: 0 when every stack survives the loss of any one zone, 1 when the zone-loss audit fails "
            "for a stack, 2 on an unknown stack, invalid settings or an output that cannot be written."
        ),
    )
    result.add_argument("stacks", nargs="*", metavar="STACK", help=f"stacks to plan (default: all: {stacks})")
    result.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: tree, counts per type, outputs, then the audit table (default); "
        "json: the plan as documented in plan/plan.schema.json",
    )
    result.add_argument("--output", metavar="PATH", type=Path, help="write the plan to PATH instead of standard output")
    result.add_argument(
        "--diagram", metavar="DIR", type=Path, help="also draw each stack's architecture as DIR/<stack>.svg and .png"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    known = offline.stacks()
    requested = list(dict.fromkeys(args.stacks)) or known
    unknown = [stack for stack in requested if stack not in known]
    if unknown:
        return _refuse("\n".join(str(offline.UnknownStackError(stack, known)) for stack in unknown))
    if args.diagram is not None and shutil.which("dot") is None:
        return _refuse(
            "--diagram needs Graphviz's `dot` on PATH: install the Debian package graphviz "
            "(bash scripts/setup-system.sh does)."
        )

    evaluations, problems = [], []
    for stack in requested:
        try:
            evaluations.append(offline.evaluate(stack, preview=True))
        except pulumi.RunError as exc:  # invalid settings, listed with their keys
            problems.append(str(exc))
    if problems:
        return _refuse("\n".join(problems))
    plan = plan_of(evaluations, offline.project_name())

    try:
        _write_plan(plan, args.format, args.output)
        if args.diagram is not None:
            _draw(evaluations, args.diagram)
    except (OSError, subprocess.CalledProcessError) as exc:
        return _refuse(f"cannot write the output: {exc}")
    return EXIT_OK if plan.zone_loss_passed else EXIT_AUDIT_FAILED


def _write_plan(plan: Plan, output_format: str, output: Path | None) -> None:
    colour = output is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if output_format == "json":
        text = plan.model_dump_json(by_alias=True, indent=2) + "\n"
    else:
        text = render(plan, Style(colour))
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    stacks = ", ".join(s.stack for s in plan.stacks)
    verdict = "passed" if plan.zone_loss_passed else "FAILED"
    print(f"wrote the {output_format} plan of {stacks} to {output}; zone-loss audit {verdict}", file=sys.stderr)


def _draw(evaluations: list[offline.Evaluation], directory: Path) -> None:
    # Imported only when asked for: `diagrams` and Graphviz are not needed for the plan itself.
    from plan import diagram

    for ev in evaluations:
        paths = diagram.render(topology(ev), directory, offline.project_name())
        print(f"drew {ev.stack}: {', '.join(str(p) for p in paths)}", file=sys.stderr)


def _refuse(message: str) -> int:
    print(f"python -m plan: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
