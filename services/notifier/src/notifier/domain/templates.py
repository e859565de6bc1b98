"""Bilingual (English and Traditional Chinese) message templates.

Every message carries both languages, English first, in a plain-text and an HTML
body rendered with Jinja2 from ``notifier/templates`` (``<name>.txt`` and
``<name>.html``, both extending a layout with the greeting and the signature).
HTML is autoescaped; a missing field is an error, never a blank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_env = Environment(
    loader=PackageLoader("notifier", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

SUBJECTS: dict[str, str] = {
    "invitation": "Invitation to Program Registration 課程註冊邀請",
    "account_activated": "University Account Activated 大學帳戶已啟用",
    "form_received": "Registration Form Received 已收到註冊表格",
    "document_rejected": "Action Required: Please Upload Your Document Again 請重新上載文件",
    "photo_rejected": "Action Required: Student Card Photo Not Accepted 學生證相片未獲接納",
    "registration_completed": (
        "Acknowledgement of Program Registration to the University 課程註冊確認"
    ),
    "registration_incomplete": (
        "Follow-up Action: Program Registration to the University 課程註冊跟進事項"
    ),
    "registration_withdrawn": "Program Registration Withdrawn 課程註冊已撤銷",
    "card_ready": "Student Card Ready for Collection 學生證已可領取",
    "deadline_reminder": "Reminder: Program Registration Deadline 課程註冊截止日期提示",
}
TEMPLATES: tuple[str, ...] = tuple(SUBJECTS)


class UnknownTemplate(KeyError):
    """No template of that name."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(template: str, context: dict[str, Any]) -> Rendered:
    if template not in SUBJECTS:
        raise UnknownTemplate(template)
    subject = SUBJECTS[template]
    values = {**context, "subject": subject}
    return Rendered(
        subject=subject,
        text=_env.get_template(f"{template}.txt").render(**values),
        html=_env.get_template(f"{template}.html").render(**values),
    )
