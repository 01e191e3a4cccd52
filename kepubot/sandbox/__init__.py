"""Local emulator of the platform endpoints kepubot's channels call, for demos and tests.

Written from the platforms' documentation (docs/platforms.md §2 Weibo, §3 WeChat OA, §4 Douyin,
§6 WeCom, §7 DingTalk, §11), not from our clients, and on the standard library only, so it
starts fast and cannot share a bug with ``kepubot.channels``. See :class:`Sandbox` and
:mod:`kepubot.sandbox.control`.
"""

from kepubot.sandbox.faults import FaultConfigError, FaultRule
from kepubot.sandbox.robots import dingtalk_sign
from kepubot.sandbox.server import Sandbox, main
from kepubot.sandbox.webhook import sign_body

__all__ = ["FaultConfigError", "FaultRule", "Sandbox", "dingtalk_sign", "main", "sign_body"]
