"""Worker middleware: the request id of the message being processed, for every log line."""

from __future__ import annotations

from contextvars import Token
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from service.core.context import client_var, request_id_var

_TOKENS = "_hostmaster_request_id_token"


class RequestIdOfMessage(Middleware):
    """Binds ``message.options["request_id"]`` for the duration of the message."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        token = request_id_var.set(message.options.get("request_id") or (message.args[0] if message.args else None))
        setattr(message, _TOKENS, (token, client_var.set(message.options.get("client"))))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        tokens: tuple[Token[str | None], Token[str | None]] | None = getattr(message, _TOKENS, None)
        if tokens is not None:
            request_id_var.reset(tokens[0])
            client_var.reset(tokens[1])
            delattr(message, _TOKENS)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)
