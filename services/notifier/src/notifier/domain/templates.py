"""Bilingual (English and Traditional Chinese) message templates.

Each template has a subject and two bodies (plain text and HTML), rendered from
files in ``notifier/templates`` with Jinja2; HTML is autoescaped.
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
)

SUBJECTS = {
    "invitation": "Invitation to Program Registration 課程註冊邀請",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(template: str, context: dict[str, Any]) -> Rendered:
    if template not in SUBJECTS:
        raise KeyError(f"no template {template!r}")
    return Rendered(
        subject=SUBJECTS[template],
        text=_env.get_template(f"{template}.txt").render(**context),
        html=_env.get_template(f"{template}.html").render(**context),
    )
