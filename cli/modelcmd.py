"""``memlane model list|pull|use|verify``: the embedding models on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from memlane.cli.render import emit, emit_lines, fail
from memlane.daemon.adapters.paths import resolve_paths

model_app = typer.Typer(help="Embedding models: list, pull, use, verify.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (default when piped).")]


def _in_use() -> str:
    from memlane.daemon.adapters.model_store import default_model_name
    from memlane.daemon.adapters.settings import Settings

    paths = resolve_paths()
    return Settings.load(paths.config).model or default_model_name(paths.models_dir)


def _spec(name: str):  # type: ignore[no-untyped-def]
    from memlane.daemon.domain.models import ModelUnavailable, resolve_spec

    try:
        return resolve_spec(name)
    except ModelUnavailable as exc:
        fail(str(exc))


@model_app.command("list")
def list_models(as_json: JsonFlag = False) -> None:
    """Built-in models: where they come from, whether their files are here, which is in use."""
    from memlane.daemon.adapters.model_store import describe

    rows = describe(resolve_paths().models_dir, _in_use())
    text = "\n".join(f"{'*' if r['in_use'] else ' '} {r['name']:<28} {r['dims']:>5}-d "
                     f"{'present' if r['present'] else 'not pulled':<11} {r['source']}"
                     for r in rows)
    emit_lines(rows, as_json=as_json, text=text)


@model_app.command("pull")
def pull(name: str, revision: Annotated[str, typer.Option(help="Hub branch, tag or commit.")] = "main",
         as_json: JsonFlag = False) -> None:
    """Download a model from the Hugging Face hub (resumable) and record its checksums."""
    from memlane.daemon.adapters.model_store import pull as pull_model
    from memlane.daemon.domain.models import ModelUnavailable

    spec = _spec(name)
    try:
        manifest = pull_model(spec, resolve_paths().models_dir, revision=revision)
    except ModelUnavailable as exc:
        fail(str(exc))
    files = {path: {"size": f.size, "sha256": f.sha256} for path, f in manifest.files.items()}
    emit({"model": manifest.model, "repo": manifest.repo, "revision": manifest.revision,
          "files": files}, as_json=as_json,
         text=f"pulled {manifest.model} from {manifest.repo}@{manifest.revision[:12]}; "
              f"`memlane model use {manifest.model}` makes the daemon use it")


@model_app.command("use")
def use(name: str, as_json: JsonFlag = False) -> None:
    """Make the daemon use a model (written to the config file; restart the daemon)."""
    from memlane.daemon.adapters.model_store import require_intact
    from memlane.daemon.domain.models import ModelUnavailable
    from memlane.daemon.adapters.settings import write_config_value

    spec = _spec(name)
    paths = resolve_paths()
    try:
        require_intact(spec, paths.models_dir)
    except ModelUnavailable as exc:
        fail(str(exc))
    write_config_value(paths.config, "model", spec.name)
    emit({"model": spec.name, "config": str(paths.config)}, as_json=as_json,
         text=f"memlane will use {spec.name} from its next start (`memlane down && memlane up`);"
              " memories are re-embedded from the log's text (`memlane wait` follows it)")


@model_app.command("verify")
def verify(name: Annotated[str, typer.Argument(help="Model (default: the one in use).")] = "",
           as_json: JsonFlag = False) -> None:
    """Hash the model's files and compare them with the recorded checksums."""
    from memlane.daemon.adapters.model_store import check_files
    from memlane.daemon.domain.models import ModelUnavailable

    spec = _spec(name or _in_use())
    try:
        rows = check_files(spec, resolve_paths().models_dir, full=True)
    except ModelUnavailable as exc:
        fail(str(exc))
    ok = all(r["status"] == "ok" for r in rows)
    emit({"model": spec.name, "ok": ok, "files": rows}, as_json=as_json,
         text="\n".join(f"{r['status']:<10} {r['file']}  {r['detail']}" for r in rows))
    if not ok:
        raise SystemExit(3)
