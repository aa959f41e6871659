"""`muninctl fetch-now`: look for new mail at once instead of at the next poll."""

from __future__ import annotations

import click

from muninctl import context, output


@click.command("fetch-now")
@click.argument("account", required=False)
@context.json_option
def command(account: str | None) -> None:
    """Fetch new mail now, for every account or for ACCOUNT."""
    result = context.call("fetch-now", {"account": account} if account else {})
    if context.options().json:
        output.echo_json(result)
        return
    names = ", ".join(result["accounts"]) or "no accounts configured"
    if result.get("fetcher_paused"):
        click.echo("the fetcher is paused: nothing is fetched until `muninctl resume fetcher`")
    else:
        click.echo(f"fetching: {names}")
