"""The sharing page's form: add a destination (the API's serializer validates it again)."""

from __future__ import annotations

from django import forms

from .models import DestinationKind


class DestinationForm(forms.Form):
    name = forms.SlugField(max_length=80, help_text="what the team's policy names")
    kind = forms.ChoiceField(choices=DestinationKind.choices)
    base_url = forms.URLField(max_length=500, label="Base URL", assume_scheme="https")
    token = forms.CharField(max_length=500, required=False, widget=forms.PasswordInput, help_text="API token")
    username = forms.CharField(max_length=150, required=False)
    password = forms.CharField(max_length=500, required=False, widget=forms.PasswordInput, strip=False)
    topic = forms.CharField(max_length=200, required=False, help_text="Hermes topic")
    authors = forms.CharField(max_length=1000, required=False, help_text="Hermes authors")
