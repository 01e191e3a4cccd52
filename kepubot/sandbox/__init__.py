"""Local emulator of the platform endpoints kepubot's channels call, for demos and tests.

Written from the platform notes (the shared platforms.md, §1 Weibo, §2 WeChat OA, §3 Douyin,
§4.3 WeCom, §4.4 DingTalk, §6), not from our clients, and on the standard library only, so it
starts fast and cannot share a bug with ``kepubot.channels``. See :class:`Sandbox` and
:mod:`kepubot.sandbox.control`.
"""

from kepubot.sandbox.faults import FaultConfigError, FaultRule
from kepubot.sandbox.robots import dingtalk_sign
from kepubot.sandbox.server import Sandbox, main
from kepubot.sandbox.webhook import sign_body

__all__ = ["FaultConfigError", "FaultRule", "Sandbox", "dingtalk_sign", "main", "sign_body"]
