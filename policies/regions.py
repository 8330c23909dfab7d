"""What a claim is about, and whether two claims overlap: same target, same class, intersecting cones.

Angles are degrees (ICRS). A subject sets any of: a target (a point, with the
class recorded in its ``TargetExtra`` named by ``BATON_POLICIES['TARGET_CLASS_EXTRA']``),
an object class, a cone. Two subjects overlap when every dimension both of
them set agrees (same class, case-insensitive; cones or points within reach)
— a dimension only one of them sets cannot tell them apart, so it counts as
overlapping: a claim on "every microlensing event" overlaps a claim on "the
bulge". Two different targets never overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tom_targets.models import Target, TargetExtra


@dataclass(frozen=True)
class Subject:
    target_id: int | None = None
    object_class: str = ""
    ra: float | None = None
    dec: float | None = None
    radius_deg: float = 0.0

    @property
    def has_position(self) -> bool:
        return self.ra is not None and self.dec is not None


def angular_separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle separation in degrees (Vincenty's formula: exact at 0 and 180 degrees)."""
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1, dec1, ra2, dec2))
    dra = ra2 - ra1
    num = math.hypot(math.cos(dec2) * math.sin(dra), math.cos(dec1) * math.sin(dec2) - math.sin(dec1) * math.cos(dec2) * math.cos(dra))
    den = math.sin(dec1) * math.sin(dec2) + math.cos(dec1) * math.cos(dec2) * math.cos(dra)
    return math.degrees(math.atan2(num, den))


def target_class(target: Target, extra_key: str) -> str:
    value = TargetExtra.objects.filter(target=target, key=extra_key).values_list("value", flat=True).first()
    return (value or "").strip()


def subject_of(*, target: Target | None, object_class: str, ra: float | None, dec: float | None,
               radius_deg: float | None, class_key: str) -> Subject:
    """The subject of a claim (or a publication): a target is a point carrying its own class."""
    if target is not None:
        return Subject(target_id=target.pk, object_class=object_class or target_class(target, class_key),
                       ra=target.ra, dec=target.dec, radius_deg=0.0)
    return Subject(object_class=object_class, ra=ra, dec=dec, radius_deg=radius_deg or 0.0)


def overlap_reason(a: Subject, b: Subject) -> str | None:
    """Why two subjects overlap, or None if they do not."""
    if a.target_id is not None and b.target_id is not None:
        return "same target" if a.target_id == b.target_id else None
    reasons = []
    if a.object_class and b.object_class:
        if a.object_class.casefold() != b.object_class.casefold():
            return None
        reasons.append(f"same object class {a.object_class!r}")
    if a.has_position and b.has_position and (a.radius_deg > 0 or b.radius_deg > 0):
        separation = angular_separation_deg(a.ra, a.dec, b.ra, b.dec)  # type: ignore[arg-type]
        if separation > a.radius_deg + b.radius_deg:
            return None
        reasons.append(f"{'inside the claimed cone' if min(a.radius_deg, b.radius_deg) == 0 else 'cones overlap'} "
                       f"({separation:.3f} deg apart)")
    return "; ".join(reasons) or "topics overlap"


def targets_in_subject(subject: Subject, class_key: str) -> list[int]:
    """Ids of the targets a subject covers (its target; or those in its cone and of its class)."""
    if subject.target_id is not None:
        return [subject.target_id]
    qs = Target.objects.filter(ra__isnull=False, dec__isnull=False)
    if subject.object_class:
        qs = qs.filter(targetextra__key=class_key, targetextra__value__iexact=subject.object_class)
    if subject.has_position:
        # A declination band prunes in SQL; the exact cone test is done here.
        qs = qs.filter(dec__gte=subject.dec - subject.radius_deg, dec__lte=subject.dec + subject.radius_deg)  # type: ignore[operator]
        return [pk for pk, ra, dec in qs.values_list("pk", "ra", "dec")
                if angular_separation_deg(subject.ra, subject.dec, ra, dec) <= subject.radius_deg]  # type: ignore[arg-type]
    return list(qs.values_list("pk", flat=True))
