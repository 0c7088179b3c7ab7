"""``leapt serve``: LeaP behind an OpenAI-compatible endpoint (FastAPI + uvicorn).

It reads the same config as ``leapt infer`` (its LeaP settings are each
request's defaults, its ``output_dir`` the served run folder), checks
everything it can -- options, the protocol, the run folder, the API key's
variable -- before the model loads once, then serves until interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from inference.args import DataArguments, LeapArguments, ModelArguments
from leapt.config import ConfigError, load_yaml, parse_config
from serving.args import ServeArguments

DESCRIPTION = (
    "Serve LeaP as an OpenAI-compatible API: POST /v1/chat/completions (and /v1/completions), "
    "GET /v1/models, GET /health. A request is one problem, 'n' its number of peer paths, the "
    "method the model name's prefix (leap-NAME, leap_t-NAME, independent-NAME, ...); every "
    "answered request is appended as a trace to --output_dir (default outputs/serve). The "
    "config's LeaP settings are the requests' defaults; data keys (source, limit) are ignored."
)
#: where served traces go unless output_dir is given (``infer``'s default is its own folder)
DEFAULT_OUTPUT_DIR = "outputs/serve"


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    from inference.backends import load_backend
    from inference.protocol import load_protocol
    from inference.run import default_concurrency
    from serving.app import LeapServer, create_app
    from serving.requests import model_ids, served_name
    from serving.runs import ServedRun, served_manifest

    argv = list(sys.argv[1:] if argv is None else argv)
    model_args, leap_args, data_args, serve_args = parse_config(
        (ModelArguments, LeapArguments, DataArguments, ServeArguments),
        argv,
        prog="leapt serve",
        description=DESCRIPTION,
    )
    output_dir = data_args.output_dir if _output_dir_given(argv) else DEFAULT_OUTPUT_DIR
    protocol = load_protocol(leap_args.protocol)
    api_key = None
    if serve_args.server_api_key_env is not None:
        api_key = os.environ.get(serve_args.server_api_key_env)
        if not api_key:
            raise ConfigError(
                f"environment variable {serve_args.server_api_key_env} is unset or empty "
                "(key 'server_api_key_env')"
            )
    run = ServedRun(output_dir, served_manifest(model_args, leap_args))
    try:
        backend = load_backend(model_args)
    except BaseException:
        run.close()
        raise
    run.record()
    name = served_name(model_args.model)
    server = LeapServer(
        backend,
        protocol,
        leap_args,
        serve_args,
        run,
        name,
        model_args.backend,
        data_args.concurrent_problems or default_concurrency(leap_args.n),
        api_key,
    )
    print(
        f"serving {', '.join(model_ids(name))} on http://{serve_args.host}:{serve_args.port}/v1 "
        f"(traces: {output_dir}/traces.jsonl)",
        flush=True,
    )
    try:
        uvicorn.run(
            create_app(server),
            host=serve_args.host,
            port=serve_args.port,
            log_level="warning",
            access_log=False,
        )
    finally:
        backend.close()
        run.close()
    return 0


def _output_dir_given(argv: list[str]) -> bool:
    """Whether ``output_dir`` was set on the command line or in the config file."""
    flags = {arg.partition("=")[0] for arg in argv}
    if flags & {"--output_dir", "--output-dir"}:
        return True
    if "--config" in argv[:-1]:
        return "output_dir" in load_yaml(argv[argv.index("--config") + 1])
    config = next((a.partition("=")[2] for a in argv if a.startswith("--config=")), None)
    return config is not None and "output_dir" in load_yaml(config)
