"""Map the project's top-level folders onto the ``posdiag`` namespace.

The card keeps ``agent/``, ``drivers/`` and ``simulators/`` at the top of the repository; installing
them as bare top-level packages would pollute site-packages with generic names, so each folder is
installed as ``posdiag.<folder>`` and its subpackages are found automatically.
"""

from setuptools import find_packages, setup

ROOTS = ("agent", "drivers", "simulators")

packages: list[str] = []
package_dir: dict[str, str] = {}
for root in ROOTS:
    package_dir[f"posdiag.{root}"] = root
    packages.append(f"posdiag.{root}")
    packages.extend(f"posdiag.{root}.{sub}" for sub in find_packages(root))

setup(packages=packages, package_dir=package_dir)
