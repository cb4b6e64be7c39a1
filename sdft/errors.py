"""User-facing errors: what went wrong, where, and how to fix it."""


class SdftError(Exception):
    """An error caused by the user's input or environment, not by a bug.

    The CLI prints it as one line (plus the fix) and exits with status 2, without a traceback.
    """

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f" Fix: {self.fix}"
        return text
