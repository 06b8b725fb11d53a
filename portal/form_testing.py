"""Test helper: read a portal form back out of a page's HTML (what each input holds, what is
ticked or selected, the error drawn beside each field and the summary at the top), so a test can
assert that a refused form kept what was typed and said what was wrong where it was wrong; and
``signed_in``, the test client that posts those forms as a signed-in user."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.test import Client


@dataclass
class Field:
    values: list[str] = field(default_factory=list)  # an input's value, a textarea's text, the selected options
    checked: list[str] = field(default_factory=list)  # ticked checkboxes' values
    error: str = ""  # the text of the error drawn beside the field


@dataclass
class Form:
    fields: dict[str, Field] = field(default_factory=dict)
    summary: str = ""  # the text of the error summary at the top

    def value(self, name: str) -> str:
        values = self.fields[name].values
        return values[0] if values else ""

    def error(self, name: str) -> str:
        return self.fields[name].error if name in self.fields else ""


class _Reader(HTMLParser):
    def __init__(self, testid: str) -> None:
        super().__init__(convert_charrefs=True)
        self.testid, self.form, self.depth = testid, Form(), 0
        self.stack: list[tuple[str, str | None, str]] = []  # (tag, data-field, role)
        self.textarea: str | None = None
        self.option: tuple[str, str] | None = None
        self.select: str | None = None

    def _field(self, name: str) -> Field:
        return self.form.fields.setdefault(name, Field())

    def _current(self) -> str | None:
        return next((f for _, f, _ in reversed(self.stack) if f), None)

    def _role(self, role: str) -> bool:
        return any(r == role for _, _, r in self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if not self.depth:
            if tag == "form" and a.get("data-testid") == self.testid:
                self.depth = 1
            return
        if tag in ("input", "br", "img", "hr", "meta", "link"):
            if tag == "input" and a.get("name"):
                kind = a.get("type", "text")
                if kind == "checkbox":
                    self._field(a["name"])
                    if "checked" in a:
                        self._field(a["name"]).checked.append(a.get("value") or "on")
                elif kind not in ("hidden", "submit"):
                    self._field(a["name"]).values.append(a.get("value") or "")
            return
        if tag == "form":
            self.depth += 1
        # Unfold draws a field's errors in a red <div> (the required mark is a red <span>)
        role = ("summary" if a.get("data-testid") == "form-errors"
                else "errors" if tag == "div" and "text-red-600" in (a.get("class") or "") else "")
        self.stack.append((tag, a.get("data-field"), role))
        if tag == "textarea" and a.get("name"):
            self.textarea = a["name"]
            self._field(a["name"]).values.append("")
        if tag == "select" and a.get("name"):
            self.select = a["name"]
            self._field(a["name"])
        if tag == "option" and self.select and "selected" in a:
            self._field(self.select).values.append(a.get("value", ""))

    def handle_endtag(self, tag):
        if not self.depth:
            return
        if tag == "form":
            self.depth -= 1
            return
        if tag == "textarea":
            self.textarea = None
        if tag == "select":
            self.select = None
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not self.depth:
            return
        if self.textarea:
            values = self._field(self.textarea).values
            values[-1] += data.lstrip("\n") if not values[-1] else data
        if self._role("summary"):
            self.form.summary += data
        elif self._role("errors") and (name := self._current()):
            self._field(name).error += data.strip() + " "


def read_form(html: str, testid: str) -> Form:
    """The form ``<form data-testid=testid>`` of ``html``; an empty Form when it is not there."""
    reader = _Reader(testid)
    reader.feed(html)
    for f in reader.form.fields.values():
        f.error = " ".join(f.error.split())
    reader.form.summary = " ".join(reader.form.summary.split())
    return reader.form


def signed_in(user) -> Client:
    """A Django test client with a session for ``user``: the portal's pages as their browser sees them."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client
