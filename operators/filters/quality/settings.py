"""The quality operator's parameters: which families run, each family's settings, per-language overrides.

`QualityParams` is `QualityOptions` plus one field per family in `FAMILIES`, named after the family
and holding its settings model, so adding a family is adding it to `FAMILIES`. The rows of a
language are judged with `settings_for(language)`: the family defaults, then the bundled table's
entry for the language (`languages`, unless `language_table: false`), then the names the job sets
for the family, then the job's `per_language` entry; each later one replaces only the names it
gives. An entry's `skip` lists rules (drop reasons) not applied to the language's rows, counted in
stats. An entry may not change which signals a family writes (its n-gram sizes), since every row
of a batch shares the same columns. The old flat names (`c4_filter_no_terminal_punct`, `min_words`,
...) are moved into their family's settings with a DeprecationWarning naming the new place.
"""
from __future__ import annotations

import sys
import warnings
from typing import Any, Literal

from pydantic import Field, create_model, field_validator, model_validator

from engine.operator import Params
from operators.filters.quality.c4 import C4
from operators.filters.quality.family import FamilySettings, RuleFamily
from operators.filters.quality.fineweb import FineWeb
from operators.filters.quality.gopher_quality import GopherQuality
from operators.filters.quality.gopher_repetition import GopherRepetition
from operators.filters.quality.languages import language_table
from operators.filters.quality.segmentation import SEGMENTED_LANGUAGES

#: Every rule family, in the order they run and a drop reason is chosen.
FAMILIES: tuple[type[RuleFamily], ...] = (GopherRepetition, GopherQuality, C4, FineWeb)
#: Names in `rules` that stand for several families.
ALIASES = {"gopher": ("gopher_repetition", "gopher_quality")}
NO_SPACE_LANGUAGES = ["zh", "ja", "th", "lo", "km", "my", "bo", "yue", "wuu"]

RuleName = Literal[tuple(ALIASES) + tuple(f.name for f in FAMILIES)]  # type: ignore[valid-type]

#: Every drop reason of every family (the names `skip` may give).
REASONS = tuple(dict.fromkeys(r for f in FAMILIES for r in f(f.Settings()).reasons()))

#: One language's overrides: for some families, the settings names to replace (the rest stay the
#: job's), and the rules not applied to the language (`skip`, drop reasons).
LanguageOverrides = create_model(
    "LanguageOverrides", __base__=Params, __module__=__name__,
    skip=(list[Literal[REASONS]] | None, None),  # type: ignore[valid-type]
    **{f.name: (f.Settings | None, None) for f in FAMILIES})


def caller_stacklevel() -> int:
    """The stacklevel that points a warning at the code that built the operator, past the
    validation machinery (pydantic, the operator base class, this package)."""
    inside = ("pydantic", "engine.operator", __package__)
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


class QualityOptions(Params):
    """The settings that are not one family's: which families run, on which rows, per language."""

    rules: list[RuleName] = [f.name for f in FAMILIES]
    #: Only judge rows of these languages (None: every row).
    languages: list[str] | None = None
    #: Languages written without spaces between words: unless segmented, the word-based rules are
    #: skipped for them (and the skips counted).
    no_space_languages: list[str] = NO_SPACE_LANGUAGES
    #: Languages whose words come from ICU's dictionary word breaker (segmentation).
    segmented_languages: list[str] = list(SEGMENTED_LANGUAGES)
    #: Judge each language with the bundled per-language table (languages.json) under the job's settings.
    language_table: bool = True
    #: language -> overrides of some families' settings for the rows of that language.
    per_language: dict[str, LanguageOverrides] = {}  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, data: Any) -> Any:
        """Move the old flat parameter names into their family's settings, with a warning."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for family in FAMILIES:
            for old, new in family.renamed.items():
                if old not in data:
                    continue
                warnings.warn(f"quality: parameter {old!r} is deprecated; use {family.name}: {{{new}: ...}}",
                              DeprecationWarning, stacklevel=caller_stacklevel())
                nested = data.get(family.name) or {}
                if isinstance(nested, FamilySettings):
                    nested = nested.model_dump(exclude_unset=True)
                nested = dict(nested)
                if new in nested:
                    raise ValueError(f"{old!r} (deprecated) and {family.name}.{new} are both given; keep "
                                     f"{family.name}.{new}")
                nested[new] = data.pop(old)
                data[family.name] = nested
        return data

    @field_validator("rules")
    @classmethod
    def _expand(cls, v):
        named = set()
        for r in v:
            named.update(ALIASES.get(r, (r,)))
        if not named:
            raise ValueError("quality: rules must name at least one rule")
        return [f.name for f in FAMILIES if f.name in named]

    def table_languages(self) -> list[str]:
        """Languages with settings of their own (bundled table and job entries), sorted."""
        langs = set(self.per_language)
        if self.language_table:
            for entries in language_table().values():
                langs |= set(entries)
        return sorted(langs)

    def skipped_rules(self, language: str | None) -> set[str]:
        """The drop reasons not applied to rows of `language` (the job's entry replaces the table's)."""
        if language is None:
            return set()
        entry = self.per_language.get(language)
        if entry is not None and entry.skip is not None:
            return set(entry.skip)
        return set(language_table().get("skip", {}).get(language, [])) if self.language_table else set()

    @model_validator(mode="after")
    def _same_signals_per_language(self):
        for lang in self.per_language:
            for family in FAMILIES:
                job, own = family(getattr(self, family.name)), family(self.settings_for(lang)[family.name])
                if own.signals() != job.signals():
                    raise ValueError(f"per_language.{lang}.{family.name}: changes the signals the family writes "
                                     f"({', '.join(s.name for s in own.signals())}); every language must keep the "
                                     f"job's (n-gram sizes included)")
        return self

    def settings_for(self, language: str | None = None) -> dict[str, FamilySettings]:
        """Each family's settings for rows of `language` (None: the job's)."""
        out = {f.name: getattr(self, f.name) for f in FAMILIES}
        if language is None:
            return out
        table = language_table() if self.language_table else {}
        entry = self.per_language.get(language)
        for family in FAMILIES:
            job = out[family.name]
            bundled = table.get(family.name, {}).get(language)
            if bundled:
                base = family.Settings(**bundled)
                out[family.name] = base.model_copy(update={k: getattr(job, k) for k in job.model_fields_set})
            override = getattr(entry, family.name) if entry is not None else None
            if override is not None:
                out[family.name] = out[family.name].model_copy(
                    update={k: getattr(override, k) for k in override.model_fields_set})
        return out


#: QualityOptions plus one field per family (`gopher_quality: {...}`, `c4: {...}`, ...).
QualityParams = create_model(
    "QualityParams", __base__=QualityOptions, __module__=__name__,
    **{f.name: (f.Settings, Field(default_factory=f.Settings)) for f in FAMILIES})
