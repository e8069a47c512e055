"""The `lorakit` command: list recipes, show the hardware, train a recipe end to end, autograde a class."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _parse_override(text: str) -> tuple[str, Any]:
    """`FIELD=VALUE` read by the recipe field's type and checked against its metadata (lorakit.config.recipes)."""
    from .config.recipes import parse_field

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects FIELD=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), parse_field(key.strip(), raw)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _fields_epilog() -> str:
    from .config.recipes import FIELDS, allowed

    lines = [f"  {name:28s} {field.metadata['help']}; {allowed(name)}" for name, field in FIELDS.items()]
    return "recipe fields for --set FIELD=VALUE (lists as a,b or [a, b]; None where allowed):\n" + "\n".join(lines)


def _cmd_recipes(_: argparse.Namespace) -> int:
    from .config.recipes import RECIPES

    for recipe in RECIPES.values():
        print(f"{recipe.name:15s} r={recipe.r:<3d} alpha={recipe.lora_alpha:<5g} lr={recipe.learning_rate:<7g} "
              f"targets={recipe.target_modules!s:10s} quant={recipe.quantization}  {recipe.description}")
    return 0


def _cmd_info(_: argparse.Namespace) -> int:
    from .models.hardware import detect

    hw = detect()
    print(f"device: {hw.device} ({hw.name})\nbf16 native: {hw.bf16}\nfp16: {hw.fp16}\n"
          f"best precision: {hw.best_precision}\nbitsandbytes installed: {hw.bitsandbytes}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .training.pipeline import train

    overrides = dict(args.set or [])
    result = train(args.recipe, model=args.model, output_dir=args.output_dir, resume_from_checkpoint=args.resume,
                   **overrides)
    if not result.is_main_process:  # under torchrun / accelerate launch, one process reports
        return 0
    print(result.summary())
    for note in result.notes:
        print(f"note: {note}")
    try:
        from .lessons.plots import plot_losses
    except ImportError:
        print("loss plot skipped: matplotlib is not installed (pip install 'lorakit[course]')")
    else:
        plot_path = result.output_dir / "loss.png"
        plot_losses(result.log_history, plot_path, title=f"recipe {result.recipe.name}")
        print(f"loss plot: {plot_path}")
    print(f"adapter: {result.adapter_dir}")
    return 0


def _parse_shard(text: str) -> Any:
    """`--shard K/N`, checked by lorakit.grading.shards.parse_shard."""
    from .grading.shards import parse_shard

    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _cmd_merge(args: argparse.Namespace) -> int:
    from .grading.shards import merge_csvs

    grading_options = [name for name, given in (("--shard", args.shard), ("--submissions", args.submissions),
                                                ("--feedback", args.feedback), ("--timeout", args.timeout),
                                                ("--secret-file", args.secret_file)) if given]
    if not args.csv or grading_options:
        raise ValueError("--merge takes the shard CSVs and --csv OUT (where the merged CSV goes), and no "
                         + (", ".join(grading_options) if grading_options else "grading option"))
    try:
        merged = merge_csvs([Path(p) for p in args.merge], Path(args.csv), args.assignment)
    except OSError as err:
        print(f"lorakit grade: {err}", file=sys.stderr)
        return 1
    print(f"{len(merged)} row(s) from {len(args.merge)} shard CSV(s) merged: {args.csv}")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    from .grading import grade_class
    from .grading.sandbox import SandboxUnavailable

    if args.merge is not None:
        return _cmd_merge(args)
    course = Path(args.course_root)
    csv_path = Path(args.csv) if args.csv else course / f"grades_{args.assignment}.csv"
    secret = Path(args.secret_file).read_text().strip() if args.secret_file else None
    try:
        grades = grade_class(course, args.assignment, args.submissions, csv_path, timeout=args.timeout,
                             feedback=args.feedback, sandbox_mode="warn" if args.unsafe_no_sandbox else "require",
                             secret=secret, jobs=args.jobs, shard=args.shard)
    except (SandboxUnavailable, RuntimeError, OSError) as err:
        print(f"lorakit grade: {err}", file=sys.stderr)
        return 1
    width = max((len(g.student) for g in grades), default=0)
    for g in grades:
        late = f"  late {g.seconds_late:g} s, penalty {g.late_penalty:g}" if g.seconds_late else ""
        print(f"{g.student:{width}s}  {g.score:g}/{g.max_score:g}  {g.status}{late}"
              + (f"  {g.detail}" if g.detail else ""))
    print(f"formgrader: graded notebooks in {course / 'autograded'}/<student>/{args.assignment}/")
    if args.feedback:
        print(f"feedback: HTML in {course / 'feedback'}/<student>/{args.assignment}/")
    shard = f" (shard {args.shard}: merge the shards' CSVs with --merge)" if args.shard else ""
    print(f"{len(grades)} submission(s) graded{shard}: {csv_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lorakit", description="LoRA/QLoRA course companion")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("recipes", help="list the built-in recipes").set_defaults(func=_cmd_recipes)
    sub.add_parser("info", help="show the hardware and the precision lorakit would pick").set_defaults(func=_cmd_info)
    p_train = sub.add_parser("train", help="train a recipe end to end", epilog=_fields_epilog(),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    p_train.add_argument("--recipe", default="quickstart")
    p_train.add_argument("--model", default=None, help="'tiny' (default, offline) or a hub id / local path")
    p_train.add_argument("--output-dir", default=None)
    p_train.add_argument("--set", action="append", type=_parse_override, metavar="FIELD=VALUE",
                         help="override a recipe field, e.g. --set r=8 --set learning_rate=1e-4")
    p_train.add_argument("--resume", action="store_true",
                         help="continue an interrupted run from the newest complete checkpoint in --output-dir")
    p_train.set_defaults(func=_cmd_train)
    p_grade = sub.add_parser("grade", help="grade a class (sandboxed) into nbgrader's gradebook and write a CSV of the scores")
    p_grade.add_argument("course_root", help="the nbgrader course folder (holds nbgrader_config.py and source/)")
    p_grade.add_argument("assignment", help="e.g. 03_learning_rate")
    p_grade.add_argument("--submissions", default=None,
                         help="a folder of <student>/<notebook>.ipynb (default: the course's "
                              "submitted/<student>/<assignment>/)")
    p_grade.add_argument("--csv", default=None, help="where to write the scores (default: "
                                                     "<course_root>/grades_<assignment>.csv)")
    p_grade.add_argument("--timeout", type=int, default=None,
                         help="seconds one cell may run before it is interrupted (default: the course config's)")
    p_grade.add_argument("--feedback", action="store_true",
                         help="also write feedback HTML (hidden tests removed) to <course_root>/feedback")
    p_grade.add_argument("--secret-file", default=None,
                         help="a file holding the course's grading secret (default: $LORAKIT_GRADING_SECRET or "
                              "c.LorakitGrader.secret in your ~/.jupyter/nbgrader_config.py)")
    p_grade.add_argument("--jobs", type=int, default=None,
                         help="students graded at once, each in its own sandbox (default: as root, one per usable "
                              "CPU and 2 GiB of memory, each slot with its own uid; otherwise 1, since the slots "
                              "would share one uid and an attacking student could starve one graded beside them)")
    p_grade.add_argument("--shard", type=_parse_shard, default=None, metavar="K/N",
                         help="grade only slice K of N (students sorted by id, student i in slice i %% N), e.g. one "
                              "task of a Slurm job array; merge the slices' CSVs with --merge")
    p_grade.add_argument("--merge", nargs="+", default=None, metavar="CSV",
                         help="grade nothing: merge the CSVs of the shards (--shard) into --csv OUT, as one unsharded "
                              "run writes it; refuses different headers, a student twice, another seed fingerprint")
    p_grade.add_argument("--unsafe-no-sandbox", action="store_true",
                         help="run student code without the bubblewrap sandbox when it can't be set up (unsafe)")
    p_grade.set_defaults(func=_cmd_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .compat.silence import drop_bitsandbytes_kernel_notice
    from .memory.oom_advice import TrainingOutOfMemoryError

    drop_bitsandbytes_kernel_notice()  # the command's first library import may be bitsandbytes' (offline: two notices)

    try:
        return args.func(args)
    except ValueError as err:
        print(f"lorakit: error: {err}", file=sys.stderr)
        return 2
    except TrainingOutOfMemoryError as err:
        print(f"lorakit: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = ": completed epochs are saved; rerun the same command with --resume" if args.command == "train" else ""
        print(f"\nlorakit: interrupted{hint}", file=sys.stderr)  # on its own line, after any progress bar
        return 130


if __name__ == "__main__":
    sys.exit(main())
