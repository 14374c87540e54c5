"""What a shell on the device sees besides files: its environment and the standard properties.

The environment is the one adbd's shell inherits from init on a user build (``adb shell env``):
``PATH`` as each release sets it, ``HOME=/``, the ``ANDROID_*`` roots, ``EXTERNAL_STORAGE``.

:func:`standard_properties` are the properties every Android build sets and clients commonly ask
for (ABI, ``ro.hardware``, ``ro.secure``/``ro.debuggable`` of a user build, the USB config,
``ro.build.version.codename``…), derived from the model where they depend on it. The state's
own properties (:meth:`~.state.AndroidState.properties`) win over them; ``getprop NAME`` falls
back to them so a client asking by name gets what a device answers.
"""

from __future__ import annotations

from .state import AndroidState

_PATHS = {
    24: "/sbin:/system/sbin:/system/bin:/system/xbin:/vendor/bin:/vendor/xbin",
    28: "/sbin:/system/sbin:/system/bin:/system/xbin:/odm/bin:/vendor/bin:/vendor/xbin",
    29: (
        "/product/bin:/apex/com.android.runtime/bin:/apex/com.android.art/bin:"
        "/system_ext/bin:/system/bin:/system/xbin:/odm/bin:/vendor/bin:/vendor/xbin"
    ),
}


def _path(sdk: int) -> str:
    best = max((k for k in _PATHS if k <= sdk), default=24)
    return _PATHS[best]


def shell_environment(state: AndroidState) -> dict[str, str]:
    """The variables ``adb shell`` starts with on this unit."""
    env = {
        "PATH": _path(state.sdk),
        "HOME": "/",
        "SHELL": "/bin/sh",
        "USER": "shell",
        "LOGNAME": "shell",
        "HOSTNAME": "localhost",
        "TERM": "dumb",
        "TMPDIR": "/data/local/tmp",
        "ANDROID_ROOT": "/system",
        "ANDROID_DATA": "/data",
        "ANDROID_STORAGE": "/storage",
        "ANDROID_ASSETS": "/system/app",
        "ANDROID_BOOTLOGO": "1",
        "EXTERNAL_STORAGE": "/sdcard",
        "ASEC_MOUNTPOINT": "/mnt/asec",
        "IFS": " \t\n",
    }
    if state.sdk >= 29:
        env["ANDROID_RUNTIME_ROOT"] = "/apex/com.android.runtime"
        env["ANDROID_TZDATA_ROOT"] = "/apex/com.android.tzdata"
    if state.sdk >= 30:
        env["ANDROID_ART_ROOT"] = "/apex/com.android.art"
        env["ANDROID_I18N_ROOT"] = "/apex/com.android.i18n"
    return env


def abi(state: AndroidState) -> str:
    """The primary ABI: the profile's ``ro.product.cpu.abi``, else arm64 from Android 8 on."""
    return state.extra_props.get("ro.product.cpu.abi") or (
        "arm64-v8a" if state.sdk >= 26 else "armeabi-v7a"
    )


def machine(state: AndroidState) -> str:
    """``uname -m`` for the ABI."""
    return {"arm64-v8a": "aarch64", "x86_64": "x86_64", "x86": "i686"}.get(abi(state), "armv7l")


def standard_properties(state: AndroidState) -> dict[str, str]:
    """Properties every build has that the state does not model itself (see module docs)."""
    primary = abi(state)
    abilist64 = "arm64-v8a" if primary == "arm64-v8a" else ""
    abilist32 = "armeabi-v7a,armeabi"
    abilist = ",".join(a for a in (abilist64, abilist32) if a)
    platform = state.extra_props.get("ro.board.platform", "msm8937")
    props = {
        "ro.hardware": state.extra_props.get("ro.hardware", platform.split("_")[0]),
        "ro.boot.hardware": state.extra_props.get("ro.hardware", platform.split("_")[0]),
        "ro.board.platform": platform,
        "ro.product.board": state.device,
        "ro.build.product": state.device,
        "ro.product.cpu.abi": primary,
        "ro.product.cpu.abilist": abilist,
        "ro.product.cpu.abilist32": abilist32,
        "ro.product.cpu.abilist64": abilist64,
        "ro.secure": "1",
        "ro.adb.secure": "1" if state.auth_required else "0",
        "ro.debuggable": "0",
        "ro.build.tags": "release-keys",
        "ro.build.version.codename": "REL",
        "ro.build.version.incremental": state.build_id.rsplit(".", 1)[-1],
        "ro.build.characteristics": "default",
        "ro.build.date.utc": "1683244800",
        "ro.build.date": "Fri May  5 00:00:00 UTC 2023",
        "ro.build.user": "builder",
        "ro.build.host": "android-build",
        "ro.bootloader": "unknown",
        "ro.boot.verifiedbootstate": "green",
        "ro.boot.flash.locked": "1",
        "ro.crypto.state": "encrypted",
        "ro.kernel.android.checkjni": "0",
        "persist.sys.usb.config": "adb",
        "sys.usb.config": "adb",
        "sys.usb.state": "adb",
        "init.svc.adbd": "running",
        "persist.sys.timezone": "Europe/Berlin",
        "persist.sys.locale": "de-DE",
        "ro.product.locale": "en-US",
        "dev.bootcomplete": "1",
        "ro.runtime.firstboot": "1683244800000",
        "net.hostname": f"android-{state.serial.lower()[:16]}",
        "ro.zygote": "zygote64_32" if abilist64 else "zygote32",
    }
    if state.sdk >= 29:
        for part in ("system", "vendor", "odm", "product"):
            props[f"ro.product.{part}.brand"] = state.brand
            props[f"ro.product.{part}.device"] = state.device
            props[f"ro.product.{part}.manufacturer"] = state.manufacturer
            props[f"ro.product.{part}.model"] = state.model
            props[f"ro.product.{part}.name"] = state.product
    return props


def all_properties(state: AndroidState) -> dict[str, str]:
    """The standard properties under the state's own, sorted as ``getprop`` lists them."""
    return dict(sorted({**standard_properties(state), **state.properties()}.items()))
