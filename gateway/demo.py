"""First-run conveniences: a demo account, and a banner that shows how to use it."""

from __future__ import annotations

import sys

from gateway.clock import utc_now
from gateway.config import DemoConfig
from gateway.ids import ACCOUNT, new_auth_token, new_sid
from store.commands import CreateAccount
from store.models import Account


async def ensure_demo_account(store, demo: DemoConfig) -> Account:
    """The account named `demo.account_name`, created on first start."""
    for account in await store.list_accounts():
        if account.friendly_name == demo.account_name:
            return account
    return await store.write(
        CreateAccount(new_sid(ACCOUNT), demo.account_name, new_auth_token(), utc_now())
    )


def print_banner(account: Account, info, stream=None) -> None:
    stream = stream or sys.stdout
    base = f"http://{info.api_host}:{info.api_port}"
    print(
        f"""
smsgw is running: API {base}, built-in SMSC simulator on 127.0.0.1:{info.simulator_port}
  demo AccountSid: {account.sid}
  demo AuthToken:  {account.auth_token}

Send a message:
  curl -s -u {account.sid}:{account.auth_token} \\
    {base}/2010-04-01/Accounts/{account.sid}/Messages.json \\
    --data-urlencode To=+14155552671 --data-urlencode From=+15017122661 \\
    --data-urlencode "Body=Hello from smsgw"

Then fetch it (replace SM... with the sid from the answer):
  curl -s -u {account.sid}:{account.auth_token} \\
    {base}/2010-04-01/Accounts/{account.sid}/Messages/SM....json
""",
        file=stream,
        flush=True,
    )
