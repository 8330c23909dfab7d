"""The drill form: a team, a ready-made or hand-written scenario, a seed and a pace."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from .scenarios import PRESETS, ScenarioInvalid, preset


class DrillForm(forms.Form):
    team = forms.ChoiceField(help_text="teams you administer")
    name = forms.CharField(max_length=100)
    preset = forms.ChoiceField(choices=[("", "— write the scenario below —"), *[(p, p) for p in PRESETS]], required=False)
    scenario = forms.CharField(widget=forms.Textarea(attrs={"rows": 10, "class": "font-monospace"}), required=False,
                               help_text="JSON (see the scenario reference below); ignored when a preset is chosen")
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=1)
    speed = forms.FloatField(min_value=0.0, max_value=1e6, initial=0.0,
                             help_text="simulated seconds per wall second (e.g. 60); 0 runs as fast as it can")
    scheduled_for = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-12-01 20:00; empty: now")

    def __init__(self, *args: Any, teams: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team = self.fields["team"]
        assert isinstance(team, forms.ChoiceField)  # noqa: S101 - declared above
        team.choices = teams

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("preset"):
            data["scenario_document"] = preset(data["preset"])
        else:
            text = (data.get("scenario") or "").strip()
            if not text:
                raise forms.ValidationError({"scenario": "choose a preset or write a scenario"})
            try:
                data["scenario_document"] = json.loads(text)
            except ValueError as exc:
                raise forms.ValidationError({"scenario": f"not valid JSON: {exc}"}) from None
        return data


__all__ = ["DrillForm", "ScenarioInvalid"]
