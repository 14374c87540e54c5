"""Map the project's top-level folders onto the ``posdiag`` namespace, and build the catalogues.

The card keeps ``agent/``, ``drivers/`` and ``simulators/`` at the top of the repository; installing
them as bare top-level packages would pollute site-packages with generic names, so each folder is
installed as ``posdiag.<folder>`` and its subpackages are found automatically.

The translations are kept as ``.po`` sources (``drivers/locale``); the build compiles each into
the ``.mo`` that gettext reads at run time, with Babel, so a wheel never ships a stale binary and
the repository holds none. An editable install writes them beside the sources (ignored by git).
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOTS = ("agent", "drivers", "simulators")
LOCALE = Path("drivers") / "locale"

packages: list[str] = []
package_dir: dict[str, str] = {}
for root in ROOTS:
    package_dir[f"posdiag.{root}"] = root
    packages.append(f"posdiag.{root}")
    packages.extend(f"posdiag.{root}.{sub}" for sub in find_packages(root))


class BuildWithCatalogues(build_py):
    """``build_py`` that also compiles every ``.po`` under ``drivers/locale`` to its ``.mo``."""

    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
            relative = po.relative_to("drivers").with_suffix(".mo")
            targets = [Path(self.build_lib) / "posdiag" / "drivers" / relative]
            if getattr(self, "editable_mode", False):
                targets.append(po.with_suffix(".mo"))
            with po.open("rb") as handle:
                catalog = read_po(handle)
            for target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    write_mo(out, catalog)


setup(packages=packages, package_dir=package_dir, cmdclass={"build_py": BuildWithCatalogues})
