import pytest

from khabar.text._outlets import canonical_outlet, outlets_from_attribution


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("رويترز- الفرنسية- وكالات", ["Reuters", "AFP", "agencies"]),
        ("أ ف ب", ["AFP"]),
        ("أ.ف.ب", ["AFP"]),
        ("فرانس برس", ["AFP"]),
        ("الفرنسية", ["AFP"]),
        ("AFP", ["AFP"]),
        ("أسوشيتد برس", ["AP"]),
        ("Associated Press", ["AP"]),
        ("AP", ["AP"]),
        ("رويترز", ["Reuters"]),
        ("(رويترز)", ["Reuters"]),
        ("Reuters, AFP", ["Reuters", "AFP"]),
        ("الأناضول", ["Anadolu"]),
        ("Anadolu", ["Anadolu"]),
        ("سانا", ["SANA"]),
        ("بي بي سي", ["BBC"]),
        ("الجزيرة + وكالات", ["Al Jazeera", "agencies"]),
        ("Al Jazeera and agencies", ["Al Jazeera", "agencies"]),
        ("CNN", ["CNN"]),
        ("dpa", ["dpa"]),
        ("شينخوا / Xinhua", ["Xinhua"]),
        ("فرانس 24", ["France 24"]),
        ("France 24 – Reuters", ["France 24", "Reuters"]),
        ("رويترز وأ ف ب", ["Reuters", "AFP"]),
        ("رويترز ووكالات", ["Reuters", "agencies"]),
        ("وكالات", ["agencies"]),
        ("رويترز، رويترز", ["Reuters"]),
    ],
)
def test_attribution_lines(line: str, expected: list[str]) -> None:
    assert outlets_from_attribution(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "سياسة",
        "usa",
        "قال مسؤول أمريكي إن الولايات المتحدة نفذت ضربة جوية",
        "ونقلت رويترز عن مصدر أميركي",
        "Reuters reported on Tuesday that talks had stalled",
        "واشنطن - رويترز",
        "رويترز " * 30,
    ],
)
def test_not_attribution_lines(line: str) -> None:
    assert outlets_from_attribution(line) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("رويترز", "Reuters"),
        ("الجزيرة نت", "Al Jazeera"),
        ("www.aljazeera.net", "Al Jazeera"),
        ("https://www.reuters.com/world/", "Reuters"),
        ("BBC News - World", "BBC"),
        ("فرانس 24", "France 24"),
        ("  Le   Monde ", "Le Monde"),
        ("Yahoo News - Latest", "Yahoo News - Latest"),
    ],
)
def test_canonical_outlet(name: str, expected: str) -> None:
    assert canonical_outlet(name) == expected
