"""Words of the demo region: seeded fake names, stolen items and narrative templates.

The names are invented combinations of common first and last names; they appear only
in personal fields (victim, suspect, narrative) so that tests can check those fields
never leak or sit unencrypted in the database.
"""

from __future__ import annotations

import random

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
    "Sarah", "Carlos", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra",
    "Mark", "Ashley", "Minh", "Emily", "Steven", "Maria", "Andrew", "Michelle", "Kenji",
    "Amanda", "Joshua", "Rosa", "Kevin", "Melissa", "Brian", "Deborah", "Tyrone", "Ana",
    "Dmitri", "Priya", "Hassan", "Fatima", "Luis", "Mei", "Oluwaseun", "Ingrid", "Tomas",
    "Aisha", "Connor", "Leilani", "Jorge", "Yuki", "Samuel", "Grace",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Nguyen", "Tran", "Kim", "Patel", "Okafor", "Larsen", "Novak", "Kowalski", "Yamamoto",
    "Haddad", "Ivanova", "Fitzgerald", "Oyelaran", "Svensson", "Castillo", "Begay",
    "Whitehorse", "Kealoha", "Moreau", "Delgado", "Chen", "Singh", "Abara", "Lindqvist",
)  # fmt: skip
ITEMS = (
    "a laptop", "a wallet", "a phone", "a bicycle", "jewelry", "tools", "a purse",
    "a backpack", "cash", "a tablet", "prescription medication", "a catalytic converter",
)  # fmt: skip
VEHICLES = (
    "2014 Honda Civic", "2009 Toyota Camry", "2017 Subaru Outback", "2001 Honda Accord",
    "2019 Ford F-150", "2012 Hyundai Elantra", "2006 Chevrolet Silverado", "2020 Kia Soul",
)  # fmt: skip
SERIES_MO = (
    "Suspect entered wearing a black hoodie and a blue surgical mask, displayed a black "
    "handgun, demanded cash from the register in a plastic bag and fled on foot toward "
    "the rail line."
)


NARRATIVES: dict[str, tuple[str, ...]] = {
    "burglary_residential": (
        "{v} reports unknown suspect forced the rear door and took {item}.",
        "R/P {v} returned home to find a window pried open; {item} missing.",
    ),
    "burglary_commercial": ("Alarm call. Front glass broken; {item} and cash drawer taken.",),
    "theft_from_vehicle": ("{v} reports {item} taken from a {car} parked overnight.",),
    "vehicle_theft": ("{v} reports a {car} stolen from where it was parked.",),
    "shoplifting": ("Loss prevention detained a subject leaving with unpaid merchandise.",),
    "theft_other": ("{v} reports {item} taken while unattended.",),
    "pickpocket": ("{v} reports {item} taken from a pocket in a crowd.",),
    "robbery_street": ("{v} was approached by two suspects who demanded {item} and fled.",),
    "robbery_commercial": ("Clerk {v} reports a suspect demanded money from the till.",),
    "assault_simple": ("{v} was punched during an argument with an acquaintance.",),
    "assault_aggravated": ("{v} was struck with a bottle and taken to hospital.",),
    "assault_dv": ("Domestic. {v} reports being assaulted by a partner at home.",),
    "sexual_assault": ("Sexual assault reported by {v}; advocate requested.",),
    "sexual_fondling": ("{v} reports unwanted sexual touching by a known person.",),
    "vandalism": ("Graffiti and damage reported by {v}.",),
    "drugs": ("Subject found in possession of suspected methamphetamine.",),
    "trespass": ("Subject previously trespassed found on the property.",),
    "disorderly": ("Large disturbance; subjects dispersed.",),
    "weapons": ("Subject found carrying a loaded handgun without a permit.",),
    "fare_evasion": ("Rider without valid fare.",),
}


def narrative(rng: random.Random, kind: str, victim: str | None) -> str:
    """Return a short officer's narrative for an incident of ``kind``, naming the victim."""
    template = rng.choice(NARRATIVES.get(kind, ("Incident reported.",)))
    return template.format(v=victim or "Complainant", item=rng.choice(ITEMS),
                           car=rng.choice(VEHICLES))  # fmt: skip
