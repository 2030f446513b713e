"""The bundled presets' names, importable without torch (the CLI's help lists them)."""

PRESET_NAMES = ("ddpm", "sd1", "sd2", "dit", "sd3", "sd3-reflow")
