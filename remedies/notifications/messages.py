"""The owner's message in plain words: what is wrong, what will happen, how long it takes and what
the owner must do, from a notification's facts.

Owns every text the owner reads, in one place (`TEXTS`, by language; English today, and any other
language falls back to it) and how times and durations are written (times in the owner's time
zone). Pure: no I/O. What the facts are is `facts`'; when a message may go out is `policy`'s; how
it travels is the channels'.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from remedies.notifications.facts import NoticeFacts, OtaPatch, UpdateResult

# Every text an owner reads. Keys of `faults` are fault kinds, or the part before ":" of kinds that
# name a code or a signal (`dtc:P0217`, `sensor_stuck:<signal>`); `{detail}` is the part after it.
# Each fault has what is wrong, and what to do until it is fixed when the alarm is critical.
TEXTS: dict[str, dict] = {
    "en": {
        "faults": {
            "battery_12v_failing": (
                "The 12 V battery of {car} is weak: the car may soon fail to start.",
                "Avoid short trips and do not leave the car unused for days until then.",
            ),
            "charging_fault": (
                "The battery of {car} is not being charged while the engine runs, so the car may "
                "stop working during a drive.",
                "Drive only if you must until then, and switch off what you can (heating, seat "
                "heaters).",
            ),
            "thermostat_stuck": (
                "The engine of {car} gets too hot: the thermostat of the cooling system is stuck.",
                "Stop driving if the temperature warning lights up, and let the engine cool down.",
            ),
            "tyre_slow_leak": (
                "A tyre of {car} is slowly losing air.",
                "Check the tyre pressures before you drive, and drive gently.",
            ),
            "brake_pad_wear": (
                "The brake pads of {car} are worn and must be replaced.",
                "Keep a longer distance and avoid hard braking until then.",
            ),
            "misfire": (
                "The engine of {car} misfires: a cylinder does not fire properly.",
                "Drive gently and avoid full throttle until then.",
            ),
            "sensor_stuck": (
                "A sensor of {car} ({detail}) shows a fixed value, so the car cannot watch that "
                "part properly.",
                "Drive only if you must until then.",
            ),
            "sensor_dropout": (
                "A sensor of {car} ({detail}) has stopped reporting.",
                "Drive only if you must until then.",
            ),
            "dtc": (
                "{car} has reported the trouble code {detail}.",
                "Drive only if you must until then.",
            ),
            "*": (
                "{car} has reported a fault ({fault}).",
                "Drive only if you must until then.",
            ),
        },
        "your_car": "your car",
        "critical_prefix": "Safety: ",
        "ota_will": "We will update the {ecu} software of {car} to version {version} over the air. "
        "The update fixes this problem.",
        "ota_how_long": "The installation takes {duration}. It starts only while the car is parked, "
        "and the car cannot be driven during it.",
        "ota_do": "Nothing: the update installs by itself the next time the car is parked.",
        "ota_do_consent": "Accept the update on the car's screen the next time you park.",
        "visit_will": "We have booked a repair for {car} at {centre}{address} on {when}.",
        "visit_how_long": "The repair takes {duration}.",
        "visit_do": "Bring the car to {centre} on {when}. If that time does not suit you, call the "
        "centre to change it.",
        "installed_will": "The {ecu} software of {car} was updated to version {version} on {when}. "
        "The update fixes this problem.",
        "installed_how_long": "The update is complete: nothing more is installed for it.",
        "installed_do": "Nothing.",
        "rolled_back_will": "The {ecu} software update of {car} did not pass the car's own check on "
        "{when}, so the car went back to version {version}, which it ran before. The problem is not "
        "fixed yet.",
        "rolled_back_how_long": "Nothing was changed: the car works as it did before the update.",
        "rolled_back_do": "Nothing for now: we will tell you how the problem will be fixed.",
        "subject_installed": "{car_title}: the software update is installed",
        "subject_rolled_back": "{car_title}: the software update was undone",
        "subject_ota": "{car_title}: a software update fixes a fault",
        "subject_visit": "{car_title}: repair booked for {when}",
        "headings": ("What is wrong", "What will happen", "How long it takes", "What you need to do"),
        "detail": "Technical detail: {explanation}",
        "reference": "Reference: notification {notification_id}",
        "minutes": ("{n} minute", "{n} minutes"),
        "hours": ("{n} hour", "{n} hours"),
        "days": ("{n} day", "{n} days"),
        "about": "about {duration}",
        "and": " and ",
        "weekdays": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        "months": (
            "January", "February", "March", "April", "May", "June", "July", "August", "September",
            "October", "November", "December",
        ),
        "when": "{weekday} {day} {month} at {hh:02d}:{mm:02d} ({zone})",
    },
}  # fmt: skip
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Message:
    """One message for one owner. `text` is the whole body (e-mail); `short` fits a car's screen."""

    language: str
    critical: bool
    subject: str
    what_is_wrong: str
    what_will_happen: str
    how_long: str
    what_to_do: str
    detail: str  # the detector's technical sentence, or ""
    reference: str

    @property
    def parts(self) -> tuple[str, str, str, str]:
        return (self.what_is_wrong, self.what_will_happen, self.how_long, self.what_to_do)

    @property
    def text(self) -> str:
        headings = _texts(self.language)["headings"]
        blocks = [f"{h}\n{p}" for h, p in zip(headings, self.parts, strict=True)]
        blocks += [b for b in (self.detail, self.reference) if b]
        return "\n\n".join(blocks) + "\n"

    @property
    def short(self) -> str:
        return f"{self.what_is_wrong} {self.what_to_do}"


def language_of(language: str) -> str:
    """The language of the texts used for an owner's `language` (`de-AT` -> `de`; unknown -> en)."""
    base = (language or "").split("-")[0].lower()
    return base if base in TEXTS else DEFAULT_LANGUAGE


def _texts(language: str) -> dict:
    return TEXTS[language_of(language)]


def render(
    facts: NoticeFacts, *, notification_id: int, language: str = "en", time_zone: str = "UTC"
) -> Message:
    """The message of `facts` for an owner who reads `language` and lives in `time_zone` (a visit's
    time is written in it). Raises ValueError for an unknown time zone."""
    lang = language_of(language)
    t = TEXTS[lang]
    car = facts.vehicle_label or t["your_car"]
    kind, _, detail = facts.fault.partition(":")
    wrong, advice = t["faults"].get(facts.fault) or t["faults"].get(kind) or t["faults"]["*"]
    what_is_wrong = _sentence(wrong.format(car=car, detail=detail or facts.fault, fault=facts.fault))
    remedy = facts.remedy
    settled = isinstance(remedy, UpdateResult) and remedy.installed  # the fault is cured: no advice
    if isinstance(remedy, UpdateResult):
        key = "installed" if remedy.installed else "rolled_back"
        when = _when(remedy.at, time_zone, t)
        will = t[f"{key}_will"].format(ecu=remedy.ecu, car=car, version=remedy.software_version, when=when)
        how_long, to_do = t[f"{key}_how_long"], t[f"{key}_do"]
        subject = t[f"subject_{key}"].format(car_title=_sentence(car))
    elif isinstance(remedy, OtaPatch):
        duration = _duration(remedy.duration_min, t)
        will = t["ota_will"].format(ecu=remedy.ecu, car=car, version=remedy.software_version)
        how_long = t["ota_how_long"].format(duration=duration)
        to_do = t["ota_do_consent"] if remedy.needs_consent else t["ota_do"]
        subject = t["subject_ota"].format(car_title=_sentence(car))
    else:
        when = _when(remedy.starts_at, time_zone, t)
        address = f" ({remedy.centre_address})" if remedy.centre_address else ""
        will = t["visit_will"].format(car=car, centre=remedy.centre_name, address=address, when=when)
        how_long = t["visit_how_long"].format(duration=_duration(remedy.duration_min, t))
        to_do = t["visit_do"].format(centre=remedy.centre_name, when=when)
        subject = t["subject_visit"].format(car_title=_sentence(car), when=when)
    if facts.critical and not settled:
        to_do = f"{to_do} {advice}"
        subject = t["critical_prefix"] + subject
    return Message(
        language=lang,
        critical=facts.critical,
        subject=subject,
        what_is_wrong=what_is_wrong,
        what_will_happen=will,
        how_long=how_long,
        what_to_do=to_do,
        detail=t["detail"].format(explanation=facts.explanation) if facts.explanation else "",
        reference=t["reference"].format(notification_id=notification_id),
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _duration(minutes: int, t: dict) -> str:
    """`about 1 hour and 30 minutes`, `about 2 days`: whole units, the largest two."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    units = [(days, "days"), (hours, "hours"), (mins, "minutes")]
    words = [t[name][n != 1].format(n=n) for n, name in units if n][:2]
    return t["about"].format(duration=t["and"].join(words))


def _when(at: dt.datetime, time_zone: str, t: dict) -> str:
    try:
        local = at.astimezone(zoneinfo.ZoneInfo(time_zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{time_zone!r} is not an IANA time zone") from exc
    return t["when"].format(
        weekday=t["weekdays"][local.weekday()],
        day=local.day,
        month=t["months"][local.month - 1],
        hh=local.hour,
        mm=local.minute,
        zone=local.tzname() or time_zone,
    )
