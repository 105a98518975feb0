"""The password complexity policy."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import invalid_argument


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 8
    require_upper: bool = True
    require_lower: bool = True
    require_digit: bool = True
    require_symbol: bool = False

    def check(self, password: str) -> None:
        """Raise ``invalid_argument`` naming the first rule the password breaks."""
        if len(password) < self.min_length:
            raise invalid_argument("DOMAIN-HuJf6", f"Password must be at least {self.min_length} characters long")
        if len(password) > 200:
            raise invalid_argument("DOMAIN-Jh3nf", "Password must be at most 200 characters long")
        if self.require_lower and not any(c.islower() for c in password):
            raise invalid_argument("DOMAIN-wRMXt", "Password must contain a lower case letter")
        if self.require_upper and not any(c.isupper() for c in password):
            raise invalid_argument("DOMAIN-VoaRj", "Password must contain an upper case letter")
        if self.require_digit and not any(c.isdigit() for c in password):
            raise invalid_argument("DOMAIN-ZBv4H", "Password must contain a number")
        if self.require_symbol and all(c.isalnum() for c in password):
            raise invalid_argument("DOMAIN-ZDLwA", "Password must contain a symbol")
