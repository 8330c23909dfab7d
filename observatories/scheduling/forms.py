"""The request form: one filter line by default (the API takes any number)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth.models import Group
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user
from tom_targets.models import Target

from observatories.models import Facility


class RequestForm(forms.Form):
    target = forms.ModelChoiceField(queryset=Target.objects.none())
    team = forms.ModelChoiceField(queryset=Group.objects.none())
    telescope_class = forms.ChoiceField()
    filter = forms.CharField(max_length=32, initial="rp")
    exposure_s = forms.FloatField(min_value=1, max_value=3600, initial=120)
    count = forms.IntegerField(min_value=1, max_value=100, initial=2)
    window_start = forms.DateTimeField(help_text="UTC, e.g. 2026-11-24 18:00")
    window_end = forms.DateTimeField(help_text="UTC")
    cadence_visits = forms.IntegerField(min_value=1, max_value=1000, initial=1)
    cadence_period_hours = forms.FloatField(required=False, min_value=0.01, help_text="hours between visits")
    max_airmass = forms.FloatField(min_value=1.0, max_value=10.0, initial=2.0)
    min_moon_separation_deg = forms.FloatField(min_value=0, max_value=180, initial=30)
    priority = forms.FloatField(min_value=0, max_value=100, initial=5)
    success_probability = forms.FloatField(
        min_value=0.01, max_value=0.999, initial=0.95,
        help_text="how sure you want to be that it gets observed: Baton adds copies at other sites until it is",
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Querysets and choices depend on the user and the network, so they are set per form.
        fields: dict = self.fields
        fields["target"].queryset = get_objects_for_user(user, "tom_targets.view_target", klass=Target)
        from . import hooks

        teams = Group.objects.all() if user.is_superuser else user.groups.all()
        # Only teams the user may spend telescope time for (not those where they only observe).
        fields["team"].queryset = teams if user.is_superuser else teams.filter(
            pk__in=[g.pk for g in teams if hooks.request_act_allowed(user=user, team=g)]
        )
        classes = sorted(set(Facility.objects.filter(enabled=True).values_list("telescope_class", flat=True)))
        fields["telescope_class"].choices = [(c, c) for c in classes]
        now = timezone.now().replace(second=0, microsecond=0)
        self.fields["window_start"].initial = now
        self.fields["window_end"].initial = now + timedelta(days=2)
