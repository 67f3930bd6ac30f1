"""`cmarket`: the command line, one module per command group, on top of everything else.

Heavy imports happen inside commands, so `cmarket --help` starts fast. This is the only part of
ComputeMarket that imports the provider package (to run the daemon and the demo).
"""

from __future__ import annotations

import typer

from . import job, market, provider, stake, workload
from .demo.command import demo
from .deploy import deploy, devnet

app = typer.Typer(
    name="cmarket",
    help="ComputeMarket: a blockchain-settled compute marketplace.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(deploy)
app.command()(devnet)
app.add_typer(market.app, name="market")
app.add_typer(job.app, name="job")
app.add_typer(provider.app, name="provider")
app.add_typer(stake.app, name="stake")
app.add_typer(workload.app, name="workload")
app.command()(demo)


def main() -> None:
    app()
