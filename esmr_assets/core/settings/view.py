"""What an asset may read of the settings: exactly what it declares (`resources.reads`)."""

from __future__ import annotations

from pydantic import BaseModel

from .presets import Settings


class UndeclaredSettingError(LookupError):
    """An asset read a setting it does not declare (`resources.reads`)."""


def check_setting_paths(paths) -> tuple[str, ...]:
    """`paths` ("section" or "section.field"), each naming a real setting; ValueError otherwise."""
    for path in paths:
        section, _, field = path.partition(".")
        model = Settings.model_fields.get(section)
        if model is None or section == "preset":
            raise ValueError(f"{path!r}: no settings section {section!r}")
        if field and field not in model.annotation.model_fields:
            raise ValueError(f"{path!r}: {section} has no setting {field!r}")
    return tuple(paths)


class SettingsView:
    """The settings an asset declared it reads, and nothing else: reading anything else
    raises `UndeclaredSettingError`. A declaration decides which outputs scenarios can share,
    so it must not silently fall short of what the asset reads."""

    def __init__(self, settings: Settings, paths, owner: str) -> None:
        self._settings, self._owner = settings, owner
        self._sections: set[str] = set()
        self._fields: dict[str, set[str]] = {}
        for path in check_setting_paths(paths):
            section, _, field = path.partition(".")
            if field:
                self._fields.setdefault(section, set()).add(field)
            else:
                self._sections.add(section)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "preset":
            return self._settings.preset
        if name in self._sections:
            return getattr(self._settings, name)
        if name in self._fields:
            return _SectionView(getattr(self._settings, name), self._fields[name], f"{self._owner}", name)
        raise UndeclaredSettingError(f"{self._owner} reads settings.{name} without declaring it")


class _SectionView:
    def __init__(self, section: BaseModel, fields: set[str], owner: str, name: str) -> None:
        self._section, self._fields, self._owner, self._name = section, fields, owner, name

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._fields:
            return getattr(self._section, name)
        raise UndeclaredSettingError(f"{self._owner} reads settings.{self._name}.{name} without declaring it")
