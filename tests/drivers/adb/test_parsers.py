"""Tests for posdiag.drivers.adb.parsers against the outputs of Android 7.1 to 14.

Every fixture below was typed for this file from the formats documented in
shared/reference/adb.md section 4 (AOSP BatteryService, TelephonyRegistry, WifiInfo,
DiskStatsService, toolbox getprop): serials, SSIDs, operators and accounts are invented.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posdiag.drivers.adb import parsers
from posdiag.drivers.adb.parsers import (
    BatteryInfo,
    DevicePolicyInfo,
    DiskStats,
    TelephonyInfo,
    WifiInfo,
    ls_error,
    parse_accounts,
    parse_device_owner,
    parse_diskstats,
    parse_dumpsys_battery,
    parse_dumpsys_package_version,
    parse_dumpsys_wifi,
    parse_getprop,
    parse_ls,
    parse_pm_list_packages,
    parse_settings_value,
    parse_telephony_registry,
)
from posdiag.drivers.model import Battery, NetworkInterface
from posdiag.drivers.text import clean_text

# =================================================================================================
# getprop
# =================================================================================================

GETPROP_PAX_A920_7 = """\
[dalvik.vm.heapsize]: [256m]
[gsm.network.type]: [LTE]
[gsm.operator.alpha]: [Vodafone.de]
[gsm.operator.isroaming]: [false]
[gsm.operator.numeric]: [26202]
[gsm.sim.state]: [READY]
[init.svc.adbd]: [running]
[persist.sys.timezone]: [Europe/Berlin]
[ro.build.display.id]: [PayDroid_7.1.2_Aquila_V13.1.08_20210705]
[ro.build.fingerprint]: [PAX/A920/A920:7.1.2/NJH47F/20210705:user/release-keys]
[ro.build.version.release]: [7.1.2]
[ro.build.version.sdk]: [25]
[ro.fac.exsn]: []
[ro.fac.sn]: [0821345678]
[ro.product.brand]: [PAX]
[ro.product.device]: [A920]
[ro.product.manufacturer]: [PAX]
[ro.product.model]: [A920]
[ro.product.name]: [A920]
[ro.serialno]: [0123456789ABCDEF]
[sys.boot_completed]: [1]
"""

GETPROP_SUNMI_11 = """\
[gsm.network.type]: [EDGE]
[gsm.sim.state]: [READY,ABSENT]
[ro.build.version.release]: [11]
[ro.build.version.sdk]: [30]
[ro.product.brand]: [SUNMI]
[ro.product.manufacturer]: [SUNMI]
[ro.product.model]: [V2s]
[ro.serialno]: [unknown]
[ro.sunmi.serial]: [V205P21A00123]
[sys.boot_completed]: [1]
"""

# Android 13/14: partitioned product properties, a multi-line value, CRLF from a pty shell.
GETPROP_ANDROID_14 = (
    "[persist.sys.boot.reason.history]: [reboot,userrequested,1712000000\r\n"
    "reboot,shell,1711000000\r\n"
    "reboot,factory_reset,1710000000]\r\n"
    "[ro.build.version.release]: [14]\r\n"
    "[ro.build.version.sdk]: [34]\r\n"
    "[ro.product.vendor.manufacturer]: [PAX]\r\n"
    "[ro.product.vendor.model]: [A35]\r\n"
    "[ro.serialno]: [1850012345]\r\n"
    "[ro.fac.sn]: [1850012345]\r\n"
    "[sys.boot_completed]: [1]\r\n"
)


def test_getprop_android_7_pax() -> None:
    props = parse_getprop(GETPROP_PAX_A920_7)
    assert props["ro.product.manufacturer"] == "PAX"
    assert props["ro.product.model"] == "A920"
    assert props["ro.fac.sn"] == "0821345678"
    assert props["ro.fac.exsn"] == ""
    assert props["ro.build.version.sdk"] == "25"
    assert props["ro.build.fingerprint"].startswith("PAX/A920/A920:7.1.2/")
    assert len(props) == GETPROP_PAX_A920_7.count("\n")


def test_getprop_android_11_sunmi() -> None:
    props = parse_getprop(GETPROP_SUNMI_11)
    assert props["ro.sunmi.serial"] == "V205P21A00123"
    assert props["gsm.sim.state"] == "READY,ABSENT"
    assert props["ro.serialno"] == "unknown"


def test_getprop_multiline_value_and_crlf() -> None:
    props = parse_getprop(GETPROP_ANDROID_14)
    assert props["persist.sys.boot.reason.history"] == (
        "reboot,userrequested,1712000000\nreboot,shell,1711000000\nreboot,factory_reset,1710000000"
    )
    assert props["ro.build.version.sdk"] == "34"
    assert props["ro.product.vendor.model"] == "A35"
    assert props["sys.boot_completed"] == "1"


def test_getprop_truncated_multiline_value_does_not_swallow_the_next_property() -> None:
    props = parse_getprop("[a.b]: [line one\n[c.d]: [x]\n[e.f]: [unterminated")
    assert props == {"a.b": "line one", "c.d": "x", "e.f": "unterminated"}


def test_getprop_skips_noise_and_keeps_brackets_inside_values() -> None:
    text = "WARNING: linker: libfoo.so has text relocations\n[x.y]: [a]b]\n  [z]:[1]  \nnope\n"
    assert parse_getprop(text) == {"x.y": "a]b", "z": "1"}


@pytest.mark.parametrize("text", ["", "\n\n", "garbage", "[]: []", "[a]", "[a]: b"])
def test_getprop_odd_input_is_empty(text: str) -> None:
    assert parse_getprop(text) == {}


_PROP_NAME = st.from_regex(r"[a-z][a-z0-9_.]{0,30}", fullmatch=True)
_PROP_VALUE = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="[]"), max_size=40
)


@given(st.dictionaries(_PROP_NAME, _PROP_VALUE, max_size=20))
def test_getprop_round_trip(props: dict[str, str]) -> None:
    text = "".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items()))
    # Values come back as clean_text makes them (invisible format characters dropped).
    assert parse_getprop(text) == {k: clean_text(v) for k, v in props.items()}


# =================================================================================================
# settings get
# =================================================================================================


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0\n", "0"),
        ("1\r\n", "1"),
        ("null\n", None),
        ("", None),
        ("\n", None),
        ("WARNING: linker: /system/bin/app_process has text relocations\n1\n", "1"),
        ("  Europe/Berlin  \n", "Europe/Berlin"),
    ],
)
def test_settings_value(text: str, expected: str | None) -> None:
    assert parse_settings_value(text) == expected


# =================================================================================================
# dumpsys battery
# =================================================================================================

BATTERY_ANDROID_7 = """\
Current Battery Service state:
  AC powered: false
  USB powered: true
  Wireless powered: false
  Max charging current: 500000
  Max charging voltage: 5000000
  Charge counter: 0
  status: 2
  health: 2
  present: true
  level: 76
  scale: 100
  voltage: 4012
  temperature: 312
  technology: Li-poly
"""

BATTERY_ANDROID_10_STOPPED = """\
Current Battery Service state:
  (UPDATES STOPPED -- use 'reset' to restart)
  AC powered: false
  USB powered: false
  Wireless powered: false
  Max charging current: 0
  Max charging voltage: 0
  Charge counter: 1865000
  status: 3
  health: 2
  present: true
  level: 15
  scale: 100
  voltage: 3615
  temperature: 265
  technology: Li-ion
"""

# Android 11 with a vendor's extra lines (a cycle counter; a second block that must not win).
BATTERY_ANDROID_11_VENDOR = """\
Current Battery Service state:
  AC powered: false
  USB powered: true
  Wireless powered: false
  Max charging current: 1000000
  Max charging voltage: 5000000
  Charge counter: 2450000
  status: 5
  health: 3
  present: true
  level: 1000
  scale: 1000
  voltage: 4350000
  temperature: 471
  technology: Li-ion
  Charge cycle count: 212
Vendor battery block:
  level: 3
  status: 1
"""

BATTERY_ANDROID_14 = """\
Current Battery Service state:
  AC powered: true
  USB powered: false
  Wireless powered: false
  Dock powered: false
  Max charging current: 1500000
  Max charging voltage: 5000000
  Charge counter: 3020000
  status: 4
  health: 7
  present: true
  level: 42
  scale: 100
  voltage: 3801
  temperature: -52
  technology: Li-ion
  Charging state: 1
  Charging policy: 1
"""


def test_battery_android_7() -> None:
    info = parse_dumpsys_battery(BATTERY_ANDROID_7)
    assert (info.ac_powered, info.usb_powered, info.wireless_powered) == (False, True, False)
    assert info.dock_powered is None  # not printed before Android 14-era builds
    assert info.plugged == 2
    assert (info.max_charging_current_ua, info.max_charging_voltage_uv) == (500000, 5000000)
    assert info.charge_counter_uah == 0
    assert (info.status, info.status_text) == (2, "charging")
    assert (info.health, info.health_text) == (2, "good")
    assert info.present is True
    assert (info.level, info.scale, info.level_pct) == (76, 100, 76)
    assert info.voltage_mv == 4012
    assert info.temperature_c == 31.2
    assert info.technology == "Li-poly"
    assert info.charging is True
    assert info.cycle_count is None
    assert info.updates_stopped is False
    assert (info.charging_state, info.charging_policy) == (None, None)


def test_battery_android_10_updates_stopped_and_discharging() -> None:
    info = parse_dumpsys_battery(BATTERY_ANDROID_10_STOPPED)
    assert info.updates_stopped is True
    assert (info.status, info.status_text) == (3, "discharging")
    assert info.plugged == 0
    assert info.charging is False
    assert info.level_pct == 15
    assert info.charge_counter_uah == 1865000
    assert info.temperature_c == 26.5


def test_battery_android_11_vendor_lines() -> None:
    info = parse_dumpsys_battery(BATTERY_ANDROID_11_VENDOR)
    assert info.cycle_count == 212
    assert (info.health, info.health_text) == (3, "overheat")
    assert (info.status, info.status_text) == (5, "full")
    assert info.charging is True  # full and on USB power
    assert info.level_pct == 100  # level 1000 of scale 1000
    assert info.voltage_mv == 4350  # a vendor printing µV
    assert info.temperature_c == 47.1
    assert info.raw["charge cycle count"] == "212"


def test_battery_android_14() -> None:
    info = parse_dumpsys_battery(BATTERY_ANDROID_14)
    assert info.dock_powered is False
    assert info.plugged == 1
    assert (info.status_text, info.health_text) == ("not charging", "cold")
    assert info.charging is False
    assert info.temperature_c == -5.2
    assert (info.charging_state, info.charging_policy) == (1, 1)


def test_battery_to_model_record() -> None:
    battery = parse_dumpsys_battery(BATTERY_ANDROID_11_VENDOR).to_battery()
    assert battery == Battery(
        present=True,
        level_pct=100,
        voltage_mv=4350,
        temperature_c=47.1,
        health="overheat",
        charging=True,
        cycle_count=212,
    )


@pytest.mark.parametrize(
    ("extra", "field", "expected"),
    [
        ("  cycle count: 87\n", "cycle_count", 87),
        ("  Cycle Count: -1\n", "cycle_count", None),
        ("  plugged: 4\n", "plugged", 4),
    ],
)
def test_battery_vendor_variants(extra: str, field: str, expected: int | None) -> None:
    info = parse_dumpsys_battery(BATTERY_ANDROID_7 + extra)
    assert getattr(info, field) == expected


def test_battery_words_instead_of_codes_and_missing_scale() -> None:
    text = "  status: Charging\n  health: Good\n  level: 55\n  USB powered: true\n"
    info = parse_dumpsys_battery(text)
    assert (info.status, info.health_text, info.level_pct, info.charging) == (2, "good", 55, True)


@pytest.mark.parametrize(
    "text", ["", "Can't find service: battery\n", "level: -1\nscale: 0\n", "status: banana"]
)
def test_battery_odd_input(text: str) -> None:
    info = parse_dumpsys_battery(text)
    assert isinstance(info, BatteryInfo)
    assert info.level_pct is None
    assert info.charging is None


# =================================================================================================
# dumpsys telephony.registry
# =================================================================================================

TELEPHONY_ANDROID_7 = """\
last known state:
  Phone Id=0
  mCallState=0
  mCallIncomingNumber=
  mServiceState=0 0 voice home data home Vodafone.de Vodafone 26202 Vodafone.de Vodafone 26202  LTE LTE CSS not supported -1 -1 RoamInd=-1 DefRoamInd=-1 EmergOnly=false IsDataRoamingFromRegistration=false IsUsingCarrierAggregation=false
  mSignalStrength=SignalStrength: 99 0 -120 -160 -120 -1 -1 22 -98 -12 64 2147483647 2147483647 gsm|lte
  mMessageWaiting=false
  mCallForwarding=false
  mDataActivity=0
  mDataConnectionState=2
  mDataConnectionPossible=true
  mDataConnectionReason=connected
  mDataConnectionApn=internet
  mCellLocation=Bundle[{lac=-1, cid=-1, psc=-1}]
  mCellInfo=null
  mDcRtInfo=DcRtInfo: DcPowerState=0 since=0
registrations: count=9
  {pkg=com.android.systemui binder=android.os.BinderProxy@1b2c3d callback=null onSubscriptionsChangedListenererCallback=null callerUserId=0 subId=1 phoneId=0 events=1e1}
"""  # noqa: E501

TELEPHONY_ANDROID_7_GSM = """\
last known state:
  Phone Id=0
  mCallState=0
  mServiceState=0 0 voice home data roaming China Mobile China Mobile 46000 China Mobile China Mobile 46000  EDGE EDGE CSS not supported -1 -1 RoamInd=-1 DefRoamInd=-1 EmergOnly=false IsDataRoamingFromRegistration=true IsUsingCarrierAggregation=false
  mSignalStrength=SignalStrength: 14 99 -120 -160 -120 -1 -1 99 2147483647 2147483647 2147483647 2147483647 2147483647 gsm|lte
  mDataConnectionState=0
  mDataConnectionNetworkType=2
"""  # noqa: E501

TELEPHONY_ANDROID_7_NO_SERVICE = """\
last known state:
  Phone Id=0
  mServiceState=1 1 voice home data home null null null null null null  Unknown Unknown CSS not supported -1 -1 RoamInd=-1 DefRoamInd=-1 EmergOnly=true IsDataRoamingFromRegistration=false
  mSignalStrength=SignalStrength: 99 0 -120 -160 -120 -1 -1 99 2147483647 2147483647 2147483647 2147483647 2147483647 gsm|lte
  mDataConnectionState=0
"""  # noqa: E501

TELEPHONY_ANDROID_10 = """\
last known state:
  Phone Id=0
    mCallState=0
    mRingingCallState=0
    mForegroundCallState=0
    mBackgroundCallState=0
    mPreciseCallState=Ringing call state: 0, Foreground call state: 0, Background call state: 0, Disconnect cause: -1, Precise disconnect cause: -1
    mCallDisconnectCause=-1
    mCallIncomingNumber=
    mServiceState={mVoiceRegState=0(IN_SERVICE), mDataRegState=0(IN_SERVICE), mVoiceRoamingType=home, mDataRoamingType=home, mVoiceOperatorAlphaLong=Telekom.de, mVoiceOperatorAlphaShort=Telekom, mDataOperatorAlphaLong=Telekom.de, mDataOperatorAlphaShort=Telekom, isManualNetworkSelection=false(automatic), getRilVoiceRadioTechnology=14(LTE), getRilDataRadioTechnology=14(LTE), mCssIndicator=unsupported, mNetworkId=-1, mSystemId=-1, mCdmaRoamingIndicator=-1, mCdmaDefaultRoamingIndicator=-1, mIsEmergencyOnly=false, isUsingCarrierAggregation=false, mLteEarfcnRsrpBoost=0, mNetworkRegistrationInfos=[NetworkRegistrationInfo{ domain=CS transportType=WWAN registrationState=HOME roamingType=NOT_ROAMING accessNetworkTechnology=LTE rejectCause=0 emergencyEnabled=false availableServices=[VOICE, SMS, VIDEO] cellIdentity=CellIdentityLte:{ mCi=12345678 mPci=123 mTac=4567 mEarfcn=1300 mBandwidth=2147483647 mMcc=262 mMnc=01 mAlphaLong=Telekom.de mAlphaShort=Telekom} voiceSpecificInfo=null dataSpecificInfo=null nrState=NONE}, NetworkRegistrationInfo{ domain=PS transportType=WWAN registrationState=HOME roamingType=NOT_ROAMING accessNetworkTechnology=LTE rejectCause=0 emergencyEnabled=false availableServices=[DATA] cellIdentity=null voiceSpecificInfo=null dataSpecificInfo=null nrState=NONE}], mNrFrequencyRange=-1, mIsUsingCarrierAggregation=false}
    mVoiceActivationState=0
    mDataActivationState=0
    mUserMobileDataState=true
    mSignalStrength=SignalStrength:{mCdma=CellSignalStrengthCdma: cdmaDbm=2147483647 cdmaEcio=2147483647 evdoDbm=2147483647 evdoEcio=2147483647 evdoSnr=2147483647 level=0,mGsm=CellSignalStrengthGsm: rssi=2147483647 ber=2147483647 mTa=2147483647 mLevel=0,mWcdma=CellSignalStrengthWcdma: ss=2147483647 ber=2147483647 rscp=2147483647 ecno=2147483647 level=0,mTdscdma=CellSignalStrengthTdscdma: rssi=2147483647 ber=2147483647 rscp=2147483647 level=0,mLte=CellSignalStrengthLte: rssi=-69 rsrp=-98 rsrq=-12 rssnr=60 cqi=2147483647 ta=2147483647 level=3 parametersUseForLevel=0,mNr=CellSignalStrengthNr:{ csiRsrp = 2147483647 csiRsrq = 2147483647 csiSinr = 2147483647 ssRsrp = 2147483647 ssRsrq = 2147483647 ssSinr = 2147483647 level = 0 }}
    mMessageWaiting=false
    mCallForwarding=false
    mDataActivity=0
    mDataConnectionState=2
  Phone Id=1
    mCallState=0
    mServiceState={mVoiceRegState=1(OUT_OF_SERVICE), mDataRegState=1(OUT_OF_SERVICE), mVoiceRoamingType=home, mDataRoamingType=home, mVoiceOperatorAlphaLong=null, mVoiceOperatorAlphaShort=null, mDataOperatorAlphaLong=null, mDataOperatorAlphaShort=null, isManualNetworkSelection=false(automatic), getRilVoiceRadioTechnology=0(Unknown), getRilDataRadioTechnology=0(Unknown), mCssIndicator=unsupported, mIsEmergencyOnly=false}
    mSignalStrength=SignalStrength:{mCdma=CellSignalStrengthCdma: cdmaDbm=2147483647 cdmaEcio=2147483647 evdoDbm=2147483647 evdoEcio=2147483647 evdoSnr=2147483647 level=0,mGsm=CellSignalStrengthGsm: rssi=2147483647 ber=2147483647 mTa=2147483647 mLevel=0,mLte=CellSignalStrengthLte: rssi=2147483647 rsrp=2147483647 rsrq=2147483647 rssnr=2147483647 cqi=2147483647 ta=2147483647 level=0 parametersUseForLevel=0}
    mDataConnectionState=0
  mCarrierNetworkChangeState=false
local logs:
  10-12 09:14:31.123 - notifyServiceStateForSubscriber: subId=1 phoneId=0 state={mVoiceRegState=1(OUT_OF_SERVICE), mDataRegState=1(OUT_OF_SERVICE)}
  10-12 09:14:33.456 - notifySignalStrengthForPhoneId: subId=1 phoneId=0 signalStrength=SignalStrength:{mGsm=CellSignalStrengthGsm: rssi=-101}
registrations: count=18
"""  # noqa: E501

TELEPHONY_ANDROID_11_SUNMI = """\
last known state:
  Phone Id=0
    mCallState=0
    mRingingCallState=0
    mServiceState={mVoiceRegState=0(IN_SERVICE), mDataRegState=0(IN_SERVICE), mChannelNumber=62, duplexMode()=0, mCellBandwidths=[], mOperatorAlphaLong=o2 - de, mOperatorAlphaShort=o2 - de, isManualNetworkSelection=false(automatic), getRilVoiceRadioTechnology=16(GSM), getRilDataRadioTechnology=2(EDGE), mCssIndicator=unsupported, mCdmaRoamingIndicator=-1, mCdmaDefaultRoamingIndicator=-1, VoiceRegState=0(IN_SERVICE), DataRegState=0(IN_SERVICE), mIsEmergencyOnly=false, isUsingCarrierAggregation=false, mArfcnRsrpBoost=0, mNetworkRegistrationInfos=[NetworkRegistrationInfo{ domain=CS transportType=WWAN registrationState=ROAMING roamingType=INTERNATIONAL accessNetworkTechnology=GSM rejectCause=0 emergencyEnabled=false availableServices=[VOICE, SMS] cellIdentity=CellIdentityGsm:{ mLac=1234 mCid=5678 mArfcn=62 mBsic=0x2a mMcc=262 mMnc=07 mAlphaLong=o2 - de mAlphaShort=o2 - de mAdditionalPlmns={}} voiceSpecificInfo=VoiceSpecificRegistrationInfo { mCssSupported=false mRoamingIndicator=0 mSystemIsInPrl=0 mDefaultRoamingIndicator=0} dataSpecificInfo=null nrState=**** rRplmn=26207 isUsingCarrierAggregation=false}, NetworkRegistrationInfo{ domain=PS transportType=WWAN registrationState=ROAMING roamingType=INTERNATIONAL accessNetworkTechnology=EDGE rejectCause=0 emergencyEnabled=false availableServices=[DATA] cellIdentity=null voiceSpecificInfo=null dataSpecificInfo=null nrState=**** rRplmn=26207 isUsingCarrierAggregation=false}, NetworkRegistrationInfo{ domain=PS transportType=WLAN registrationState=NOT_REG_OR_SEARCHING roamingType=NOT_ROAMING accessNetworkTechnology=IWLAN rejectCause=0 emergencyEnabled=false availableServices=[] cellIdentity=null voiceSpecificInfo=null dataSpecificInfo=null nrState=**** rRplmn= isUsingCarrierAggregation=false}], mNrFrequencyRange=0, mOperatorAlphaLongRaw=o2 - de, mOperatorAlphaShortRaw=o2 - de, mIsDataRoamingFromRegistration=true, mIsIwlanPreferred=false}
    mVoiceActivationState=0
    mDataActivationState=0
    mSignalStrength=SignalStrength:{mCdma=Invalid mGsm=CellSignalStrengthGsm: rssi=-75 ber=2147483647 mTa=2147483647 mLevel=3 mWcdma=Invalid mTdscdma=Invalid mLte=Invalid mNr=Invalid primary=CellSignalStrengthGsm}
    mMessageWaiting=false
    mDataConnectionState=2
local logs:
"""  # noqa: E501

TELEPHONY_ANDROID_13 = """\
last known state:
  Phone Id=0
    mCallState=0
    mServiceState={mVoiceRegState=0(IN_SERVICE), mDataRegState=0(IN_SERVICE), mChannelNumber=6300, duplexMode()=1, mCellBandwidths=[10000], mOperatorAlphaLong=Vodafone.de, mOperatorAlphaShort=Vodafone, isManualNetworkSelection=false(automatic), getRilVoiceRadioTechnology=14(LTE), getRilDataRadioTechnology=14(LTE), mCssIndicator=unsupported, mCdmaRoamingIndicator=-1, mCdmaDefaultRoamingIndicator=-1, VoiceRegState=0(IN_SERVICE), DataRegState=0(IN_SERVICE), mIsEmergencyOnly=false, isUsingCarrierAggregation=false, mArfcnRsrpBoost=0, mNetworkRegistrationInfos=[NetworkRegistrationInfo{ domain=PS transportType=WWAN registrationState=HOME roamingType=NOT_ROAMING accessNetworkTechnology=LTE rejectCause=0 emergencyEnabled=false availableServices=[DATA] cellIdentity=CellIdentityLte:{ mCi=***** mPci=301 mTac=***** mEarfcn=6300 mBands=[20] mBandwidth=10000 mMcc=262 mMnc=02 mAlphaLong=Vodafone.de mAlphaShort=Vodafone mAdditionalPlmns={} mCsgInfo=null} voiceSpecificInfo=null dataSpecificInfo=android.telephony.DataSpecificRegistrationInfo :{ maxDataCalls = 16 } nrState=NONE rRplmn=26202 isUsingCarrierAggregation=false}], mNrFrequencyRange=0, mOperatorAlphaLongRaw=Vodafone.de, mOperatorAlphaShortRaw=Vodafone, mIsDataRoamingFromRegistration=false, mIsIwlanPreferred=false}
    mSignalStrength=SignalStrength:{mCdma=Invalid mGsm=Invalid mWcdma=Invalid mTdscdma=Invalid mLte=CellSignalStrengthLte: rssi=-71 rssnr=2147483647 rsrp=-104 rsrq=-11 cqi=2147483647 ta=2147483647 level=2 parametersUseForLevel=0 mNr=Invalid, primary=CellSignalStrengthLte}
    mDataConnectionState=2
  Phone Id=1
    mCallState=0
    mServiceState={mVoiceRegState=1(OUT_OF_SERVICE), mDataRegState=1(OUT_OF_SERVICE), mOperatorAlphaLong=, mOperatorAlphaShort=, getRilVoiceRadioTechnology=0(Unknown), getRilDataRadioTechnology=0(Unknown), mIsEmergencyOnly=true, mNetworkRegistrationInfos=[]}
    mSignalStrength=SignalStrength:{mCdma=Invalid mGsm=Invalid mWcdma=Invalid mTdscdma=Invalid mLte=Invalid mNr=Invalid, primary=CellSignalStrengthLte}
    mDataConnectionState=0
local logs:
"""  # noqa: E501

TELEPHONY_ANDROID_14_POWER_OFF = """\
last known state:
  Phone Id=0
    mServiceState={mVoiceRegState=3(POWER_OFF), mDataRegState=3(POWER_OFF), mChannelNumber=-1, mOperatorAlphaLong=null, mOperatorAlphaShort=null, getRilVoiceRadioTechnology=0(Unknown), getRilDataRadioTechnology=0(Unknown), mIsEmergencyOnly=false, mNetworkRegistrationInfos=[]}
    mSignalStrength=SignalStrength:{mCdma=Invalid mGsm=Invalid mWcdma=Invalid mTdscdma=Invalid mLte=Invalid mNr=Invalid, primary=CellSignalStrengthLte}
    mDataConnectionState=-1
"""  # noqa: E501


def test_telephony_android_7_lte() -> None:
    info = parse_telephony_registry(TELEPHONY_ANDROID_7)
    assert len(info.phones) == 1
    phone = info.phones[0]
    assert (phone.phone_id, phone.voice_reg_state, phone.data_reg_state) == (
        0,
        "IN_SERVICE",
        "IN_SERVICE",
    )
    assert (phone.operator_alpha, phone.operator_numeric) == ("Vodafone.de", "26202")
    assert phone.roaming is False
    assert phone.network_type == "LTE"
    assert phone.emergency_only is False
    assert (phone.signal_dbm, phone.signal_rat) == (-98, "lte")  # RSRP, not the dead GSM asu
    assert phone.signal_by_rat == {"lte": -98}
    assert (phone.data_connection_state, phone.data_connection) == (2, "CONNECTED")
    assert info.primary is phone


def test_telephony_android_7_gsm_asu_to_dbm() -> None:
    phone = parse_telephony_registry(TELEPHONY_ANDROID_7_GSM).phones[0]
    assert (phone.signal_dbm, phone.signal_rat) == (-85, "gsm")  # 2 * 14 - 113
    assert phone.operator_alpha == "China Mobile"  # "long short" halves with spaces
    assert phone.operator_numeric == "46000"
    assert phone.roaming is True  # data roaming
    assert phone.network_type == "EDGE"
    assert phone.data_connection == "DISCONNECTED"


def test_telephony_android_7_no_service() -> None:
    phone = parse_telephony_registry(TELEPHONY_ANDROID_7_NO_SERVICE).phones[0]
    assert (phone.voice_reg_state, phone.data_reg_state) == ("OUT_OF_SERVICE", "OUT_OF_SERVICE")
    assert (phone.operator_alpha, phone.operator_numeric) == (None, None)
    assert phone.network_type is None
    assert phone.emergency_only is True
    assert phone.signal_dbm is None  # asu 99 = unknown
    assert phone.signal_by_rat == {}


def test_telephony_android_10_dual_sim() -> None:
    info = parse_telephony_registry(TELEPHONY_ANDROID_10)
    assert [p.phone_id for p in info.phones] == [0, 1]
    first, second = info.phones
    assert first.voice_reg_state == "IN_SERVICE"
    assert first.operator_alpha == "Telekom.de"
    assert first.operator_numeric == "26201"  # from the cell identity's MCC/MNC
    assert first.roaming is False
    assert first.network_type == "LTE"
    assert (first.signal_dbm, first.signal_level, first.signal_rat) == (-98, 3, "lte")
    assert first.data_connection == "CONNECTED"
    assert second.voice_reg_state == "OUT_OF_SERVICE"
    assert (second.operator_alpha, second.network_type, second.signal_dbm) == (None, None, None)
    assert second.data_connection == "DISCONNECTED"
    assert info.primary is first


def test_telephony_local_logs_are_not_state() -> None:
    # the event log repeats OUT_OF_SERVICE and rssi=-101 for phone 0; the state must not change
    first = parse_telephony_registry(TELEPHONY_ANDROID_10).phones[0]
    assert first.voice_reg_state == "IN_SERVICE"
    assert "gsm" not in first.signal_by_rat


def test_telephony_android_11_sunmi_roaming_gsm() -> None:
    phone = parse_telephony_registry(TELEPHONY_ANDROID_11_SUNMI).phones[0]
    assert phone.operator_alpha == "o2 - de"
    assert phone.operator_numeric == "26207"  # rRplmn
    assert phone.roaming is True  # NetworkRegistrationInfo roamingType=INTERNATIONAL
    assert phone.network_type == "EDGE"  # data technology preferred
    assert (phone.signal_dbm, phone.signal_level, phone.signal_rat) == (-75, 3, "gsm")


def test_telephony_android_13_emergency_only_second_sim() -> None:
    info = parse_telephony_registry(TELEPHONY_ANDROID_13)
    first, second = info.phones
    assert (first.operator_alpha, first.operator_numeric) == ("Vodafone.de", "26202")
    assert (first.signal_dbm, first.signal_level) == (-104, 2)
    assert first.roaming is False
    assert second.emergency_only is True
    assert second.operator_alpha is None
    assert second.signal_dbm is None
    assert info.primary is first


def test_telephony_android_14_radio_off() -> None:
    info = parse_telephony_registry(TELEPHONY_ANDROID_14_POWER_OFF)
    phone = info.phones[0]
    assert (phone.voice_reg_state, phone.data_reg_state) == ("POWER_OFF", "POWER_OFF")
    assert (phone.data_connection_state, phone.data_connection) == (-1, "UNKNOWN")
    assert phone.in_service is False
    assert info.primary is phone  # nothing in service: the first slot


def test_telephony_brief_brace_example_and_numeric_reg_state() -> None:
    text = (
        "  mServiceState={mVoiceRegState=0, mDataRegState=1, mOperatorAlphaLong=Telekom.de}\n"
        "  mSignalStrength=SignalStrength:{ mCdma=Invalid mGsm=CellSignalStrengthGsm: rssi=-75"
        " ber=99 mLevel=3 mLte=CellSignalStrengthLte: rssi=-69 rsrp=-98 rsrq=-12 level=3}\n"
    )
    phone = parse_telephony_registry(text).phones[0]  # no "Phone Id": phone 0
    assert (phone.voice_reg_state, phone.data_reg_state) == ("IN_SERVICE", "OUT_OF_SERVICE")
    assert phone.signal_by_rat == {"gsm": -75, "lte": -98}
    assert (phone.signal_dbm, phone.signal_rat) == (-98, "lte")


def test_telephony_nr_and_cdma_readings() -> None:
    nr = parse_telephony_registry(
        "  mSignalStrength=SignalStrength:{mLte=Invalid,mNr=CellSignalStrengthNr:{ csiRsrp = -100"
        " csiRsrq = -10 ssRsrp = -95 ssRsrq = -11 level = 3 }, primary=CellSignalStrengthNr}\n"
    ).phones[0]
    assert (nr.signal_dbm, nr.signal_level, nr.signal_rat) == (-95, 3, "nr")
    cdma = parse_telephony_registry(
        "  mSignalStrength=SignalStrength: 99 0 -87 -90 -1 -1 -1 99 2147483647 -1 -1 -1 -1 cdma\n"
    ).phones[0]
    assert (cdma.signal_dbm, cdma.signal_rat) == (-87, "cdma")


@pytest.mark.parametrize(
    "text", ["", "Can't find service: telephony.registry", "Phone Id=0\n", "mServiceState=\n"]
)
def test_telephony_odd_input(text: str) -> None:
    info = parse_telephony_registry(text)
    assert isinstance(info, TelephonyInfo)
    for phone in info.phones:
        assert phone.signal_dbm is None
        assert phone.voice_reg_state is None


# =================================================================================================
# dumpsys wifi
# =================================================================================================

WIFI_ANDROID_7 = """\
Wi-Fi is enabled
Stay-awake conditions: 0
mMulticastEnabled 0
mMulticastDisabled 0
mInIdleMode false
mScanPending false
WifiController:
 total records=12
 rec[0]: time=10-12 09:01:02.345 processed=DefaultState org=ApStaDisabledState dest=<null> what=155658(0x2600a)
curState=DeviceActiveState
Dump of WifiStateMachine:
current HSM state: ConnectedState
mLinkProperties {InterfaceName: wlan0 LinkAddresses: [192.168.1.23/24,]  Routes: [192.168.1.0/24 -> 0.0.0.0 wlan0,] DnsAddresses: [192.168.1.1,] Domains: null MTU: 0}
mWifiInfo SSID: "Cafe Am Markt", BSSID: 3c:a6:2f:11:22:33, MAC: 00:11:22:aa:bb:cc, Supplicant state: COMPLETED, RSSI: -58, Link speed: 65Mbps, Frequency: 2437MHz, Net ID: 0, Metered hint: false, score: 60
mNetworkInfo [type: WIFI[], state: CONNECTED/CONNECTED, reason: (unspecified), extra: "Cafe Am Markt", failover: false, available: true, roaming: false, metered: false]
mLastSignalLevel 3
Configured networks:
 ID: 0 SSID: "Cafe Am Markt" PROVIDER-NAME: null BSSID: null FQDN: null PRIO: 7 HIDDEN: false
 NetworkSelectionStatus NETWORK_SELECTION_ENABLED
 hasEverConnected: true
 KeyMgmt: WPA_PSK Protocols: WPA RSN
 AuthAlgorithms:
 PairwiseCiphers: TKIP CCMP
 PSK: *
 ID: 1 SSID: "Lager 2.4" PROVIDER-NAME: null BSSID: null FQDN: null PRIO: 3 HIDDEN: false
 NetworkSelectionStatus NETWORK_SELECTION_ENABLED
 KeyMgmt: WPA_PSK Protocols: WPA RSN
"""  # noqa: E501

WIFI_ANDROID_10_DISCONNECTED = """\
Wi-Fi is enabled
Verbose logging is off
Stay-awake conditions: 0
mInIdleMode false
mScanPending false
Dump of ClientModeImpl
current HSM state: DisconnectedState
mWifiInfo SSID: <unknown ssid>, BSSID: <none>, MAC: 02:00:00:00:00:00, Supplicant state: DISCONNECTED, RSSI: -127, Link speed: -1Mbps, Tx Link speed: -1Mbps, Rx Link speed: -1Mbps, Frequency: -1MHz, Net ID: -1, Metered hint: false, score: 0
mNetworkInfo [type: WIFI[], state: DISCONNECTED/DISCONNECTED, reason: (unspecified), extra: <unknown ssid>, failover: false, available: true, roaming: false]
Configured networks:
 - DSBLE ID: 0 SSID: "Kasse-1" PROVIDER-NAME: null BSSID: null FQDN: null PRIO: 0 HIDDEN: false PMF: false
 NetworkSelectionStatus NETWORK_SELECTION_TEMPORARY_DISABLED
 ID: 1 SSID: "Backoffice" PROVIDER-NAME: null BSSID: null FQDN: null PRIO: 0 HIDDEN: true PMF: false
"""  # noqa: E501

WIFI_ANDROID_11_SUNMI = """\
Wi-Fi is enabled
Verbose logging is off
mWifiConnectedNetworkScorerHolder: null
Dump of ClientModeImpl
current HSM state: L3ConnectedState
mWifiInfo SSID: "Shop, Front", BSSID: 9c:c9:eb:44:55:66, MAC: 0c:25:76:12:34:56, IP: /10.0.0.42, Security type: 2, Supplicant state: COMPLETED, Wi-Fi standard: 5, RSSI: -47, Link speed: 433Mbps, Tx Link speed: 433Mbps, Max Supported Tx Link speed: 433Mbps, Rx Link speed: 390Mbps, Max Supported Rx Link speed: 433Mbps, Frequency: 5180MHz, Net ID: 2, Metered hint: false, score: 60, CarrierMerged: false, SubscriptionId: -1, IsPrimary: 1
WifiConfigManager - Configured networks Begin ----
* ID: 2 SSID: "Shop, Front" PROVIDER-NAME: null BSSID: null FQDN: null HOME-PROVIDER-NETWORK: false PRIO: 0 HIDDEN: false PMF: false CarrierId: -1
 NetworkSelectionStatus NETWORK_SELECTION_ENABLED
- DSBLE ID: 3 SSID: "Gäste WLAN" PROVIDER-NAME: null BSSID: null FQDN: null HOME-PROVIDER-NETWORK: false PRIO: 0 HIDDEN: false PMF: false CarrierId: -1
WifiConfigManager - Configured networks End ----
"""  # noqa: E501

WIFI_ANDROID_13_DISABLED = """\
Wi-Fi is disabled
Verbose logging is off
mWifiInfo SSID: <unknown ssid>, BSSID: <none>, MAC: 02:00:00:00:00:00, IP: null, Security type: -1, Supplicant state: UNINITIALIZED, Wi-Fi standard: 0, RSSI: -127, Link speed: -1Mbps, Tx Link speed: -1Mbps, Frequency: -1MHz, Net ID: -1, Metered hint: false, score: 0
WifiConfigManager - Configured networks Begin ----
ID: 0 SSID: 4361666520c3 PROVIDER-NAME: null BSSID: null FQDN: null HOME-PROVIDER-NETWORK: false PRIO: 0 HIDDEN: false PMF: false CarrierId: -1
ID: 1 SSID: "Filiale 12" PROVIDER-NAME: null BSSID: null FQDN: null
WifiConfigManager - Configured networks End ----
"""  # noqa: E501


def test_wifi_android_7_connected() -> None:
    info = parse_dumpsys_wifi(WIFI_ANDROID_7)
    assert (info.enabled, info.state_text, info.connected) == (True, "enabled", True)
    assert info.ssid == "Cafe Am Markt"
    assert (info.bssid, info.mac) == ("3c:a6:2f:11:22:33", "00:11:22:aa:bb:cc")
    assert info.ip is None  # not in the Android 7 WifiInfo line
    assert (info.rssi_dbm, info.link_speed_mbps, info.frequency_mhz) == (-58, 65, 2437)
    assert (info.supplicant_state, info.net_id) == ("COMPLETED", 0)
    assert info.saved_networks == ("Cafe Am Markt", "Lager 2.4")


def test_wifi_android_10_disconnected() -> None:
    info = parse_dumpsys_wifi(WIFI_ANDROID_10_DISCONNECTED)
    assert (info.enabled, info.connected) == (True, False)
    assert (info.ssid, info.bssid) == (None, None)
    assert (info.rssi_dbm, info.link_speed_mbps, info.frequency_mhz, info.net_id) == (
        None,
        None,
        None,
        None,
    )
    assert info.supplicant_state == "DISCONNECTED"
    assert info.saved_networks == ("Kasse-1", "Backoffice")


def test_wifi_android_11_ssid_with_comma_and_tx_link_speed() -> None:
    info = parse_dumpsys_wifi(WIFI_ANDROID_11_SUNMI)
    assert info.ssid == "Shop, Front"
    assert info.ip == "10.0.0.42"
    assert info.link_speed_mbps == 433  # not "Tx Link speed" or "Max Supported"
    assert (info.rssi_dbm, info.frequency_mhz, info.net_id) == (-47, 5180, 2)
    assert info.connected is True
    assert info.saved_networks == ("Shop, Front", "Gäste WLAN")


def test_wifi_android_13_disabled_hex_ssid() -> None:
    info = parse_dumpsys_wifi(WIFI_ANDROID_13_DISABLED)
    assert (info.enabled, info.connected, info.ssid, info.ip) == (False, False, None, None)
    assert info.saved_networks == ("4361666520c3", "Filiale 12")


def test_wifi_to_interface() -> None:
    assert parse_dumpsys_wifi(WIFI_ANDROID_11_SUNMI).to_interface() == NetworkInterface(
        name="wlan0", up=True, mac="0c:25:76:12:34:56", ip="10.0.0.42", mode="wifi"
    )
    assert parse_dumpsys_wifi(WIFI_ANDROID_13_DISABLED).to_interface().up is False


@pytest.mark.parametrize("text", ["", "Wi-Fi is enabling\n", "SSID: , BSSID: ", "ID: x SSID:"])
def test_wifi_odd_input(text: str) -> None:
    info = parse_dumpsys_wifi(text)
    assert isinstance(info, WifiInfo)
    assert info.enabled is None
    assert info.saved_networks == ()


# =================================================================================================
# dumpsys diskstats
# =================================================================================================

DISKSTATS_ANDROID_7 = """\
Latency: 2ms [512B Data Write]
Data-Free: 10565240K / 11952684K total = 88% free
Cache-Free: 396336K / 403652K total = 98% free
System-Free: 137124K / 2031440K total = 6% free
"""

DISKSTATS_ANDROID_10 = """\
Latency: 1ms [512B Data Write]
Recent Disk Write Speed (kB/s) = 43215
Data-Free: 20118432K / 24590416K total = 81% free
Cache-Free: 0K / 0K total = 0% free
System-Free: 0K / 2539172K total = 0% free
File-based Encryption: true
App Size: 2341234567
App Data Size: 134217728
App Cache Size: 4194304
Photos Size: 0
Videos Size: 0
Audio Size: 0
Downloads Size: 1048576
System Size: 5368709120
Other Size: 65536
Package Names: ["com.pax.market.android.app","com.android.settings","com.example.pos"]
App Sizes: [24117248,9437184,31457280]
App Data Sizes: [3145728,16384,2097152]
Cache Sizes: [262144,8192,0]
"""

DISKSTATS_ANDROID_14_MISMATCHED = """\
Latency: 3ms [512B Data Write]
Data-Free: 50000000K / 110000000K total = 45% free
System-Free: 0K / 4000000K total = 0% free
File-based Encryption: true
Package Names: ["com.a","com.b"]
App Sizes: [1,2,3]
App Data Sizes: [10,20]
Cache Sizes: [x,1]
"""


def test_diskstats_android_7() -> None:
    stats = parse_diskstats(DISKSTATS_ANDROID_7)
    assert set(stats.partitions) == {"data", "cache", "system"}
    data = stats.partitions["data"]
    assert (data.free_kb, data.total_kb, data.free_pct) == (10565240, 11952684, 88)
    assert stats.write_latency_ms == 2
    assert stats.file_based_encryption is None
    assert stats.app_data_sizes == {}


def test_diskstats_android_10_package_sizes() -> None:
    stats = parse_diskstats(DISKSTATS_ANDROID_10)
    assert stats.partitions["cache"].total_kb == 0
    assert stats.file_based_encryption is True
    assert stats.category_sizes["App Data Size"] == 134217728
    assert stats.category_sizes["Downloads Size"] == 1048576
    assert stats.app_data_sizes == {
        "com.pax.market.android.app": 3145728,
        "com.android.settings": 16384,
        "com.example.pos": 2097152,
    }
    assert stats.app_sizes["com.example.pos"] == 31457280
    assert stats.cache_sizes["com.example.pos"] == 0


def test_diskstats_android_14_lists_that_do_not_line_up_are_dropped() -> None:
    stats = parse_diskstats(DISKSTATS_ANDROID_14_MISMATCHED)
    assert "cache" not in stats.partitions
    assert stats.app_sizes == {}  # three sizes for two names: no guessing
    assert stats.app_data_sizes == {"com.a": 10, "com.b": 20}
    assert stats.cache_sizes == {}  # a non-number in the list


def test_diskstats_odd_input() -> None:
    assert parse_diskstats("") == DiskStats()
    assert parse_diskstats("Data-Free: lots\nApp Sizes: [\n") == DiskStats()


# =================================================================================================
# pm list packages / dumpsys package
# =================================================================================================

PM_LIST_ANDROID_7 = """\
package:com.android.settings
package:com.pax.market.android.app
package:android
package:woyou.aidlservice.jiuiv5
"""

PM_LIST_F_ANDROID_7 = """\
package:/system/priv-app/PaxStore/PaxStore.apk=com.pax.market.android.app
package:/data/app/com.example.pos-1/base.apk=com.example.pos
package:/system/framework/framework-res.apk=android
"""

PM_LIST_F_ANDROID_11 = """\
package:/data/app/~~Qk9bXyQ2r8n3d0mB7wVvYA==/com.example.pos-xGd3k1bXW0sZ3mQ9Ae8wLg==/base.apk=com.example.pos
package:/system/app/SunmiPrinter/SunmiPrinter.apk=woyou.aidlservice.jiuiv5
"""

PM_LIST_FLAGS_ANDROID_13 = """\
package:com.example.pos uid:10123
package:com.example.tips  installer=com.pax.market.android.app
package:com.example.loyalty versionCode:42
Error: unknown option -z
package:
package:1bad.name
package:/data/app/x-1/base.apk=
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PM_LIST_ANDROID_7,
            [
                "com.android.settings",
                "com.pax.market.android.app",
                "android",
                "woyou.aidlservice.jiuiv5",
            ],
        ),
        (PM_LIST_F_ANDROID_7, ["com.pax.market.android.app", "com.example.pos", "android"]),
        (PM_LIST_F_ANDROID_11, ["com.example.pos", "woyou.aidlservice.jiuiv5"]),
        (PM_LIST_FLAGS_ANDROID_13, ["com.example.pos", "com.example.tips", "com.example.loyalty"]),
        ("", []),
    ],
)
def test_pm_list_packages(text: str, expected: list[str]) -> None:
    assert parse_pm_list_packages(text) == expected


def test_pm_list_packages_dedupes() -> None:
    twice = PM_LIST_ANDROID_7 + PM_LIST_F_ANDROID_7
    assert parse_pm_list_packages(twice) == [
        "com.android.settings",
        "com.pax.market.android.app",
        "android",
        "woyou.aidlservice.jiuiv5",
        "com.example.pos",
    ]


DUMPSYS_PACKAGE_ANDROID_10 = """\
Activity Resolver Table:
  Non-Data Actions:
      android.intent.action.MAIN:
        5d2f8c1 com.pax.market.android.app/.ui.MainActivity filter 3e1a5b2

Key Set Manager:
  [com.pax.market.android.app]
      Signing KeySets: 57

Packages:
  Package [com.pax.market.android.app] (8c3e9a1):
    userId=10057
    pkg=Package{a3b2c1d com.pax.market.android.app}
    codePath=/data/app/com.pax.market.android.app-Xk3l0q==
    primaryCpuAbi=armeabi-v7a
    versionCode=8310 minSdk=19 targetSdk=28
    versionName=8.3.1
    splits=[base]
    firstInstallTime=2021-07-05 10:12:13

Hidden system packages:
  Package [com.pax.market.android.app] (1b2c3d4):
    userId=10057
    codePath=/system/app/PaxStore
    versionCode=7200 minSdk=19 targetSdk=26
    versionName=7.2.0
"""

DUMPSYS_PACKAGE_ANDROID_7 = """\
Packages:
  Package [com.example.pos] (4f3e2d1):
    userId=10088
    versionCode=31 targetSdk=25
    versionName=3.1 (build 77)
    flags=[ HAS_CODE ALLOW_CLEAR_USER_DATA ALLOW_BACKUP ]
"""

DUMPSYS_PACKAGE_ANDROID_14_OTHER = """\
Packages:
  Package [com.example.other] (abc):
    versionName=9.9
"""


def test_package_version_prefers_the_installed_copy() -> None:
    text = DUMPSYS_PACKAGE_ANDROID_10
    assert parse_dumpsys_package_version(text, "com.pax.market.android.app") == "8.3.1"


def test_package_version_variants() -> None:
    version = parse_dumpsys_package_version(DUMPSYS_PACKAGE_ANDROID_7, "com.example.pos")
    assert version == "3.1 (build 77)"  # version names may hold spaces
    assert parse_dumpsys_package_version(DUMPSYS_PACKAGE_ANDROID_14_OTHER, "com.x") is None
    assert parse_dumpsys_package_version("    versionName=1.0.4\n", "com.x") == "1.0.4"
    assert parse_dumpsys_package_version("Unable to find package: com.x\n", "com.x") is None
    assert parse_dumpsys_package_version("", "com.x") is None


# =================================================================================================
# dumpsys device_policy
# =================================================================================================

DEVICE_POLICY_ANDROID_7_ADMIN_ONLY = """\
Current Device Policy Manager state:
  Enabled Device Admins (User 0, provisioningState: 0):
    com.pax.market.android.app/com.pax.market.android.app.receiver.DeviceAdminReceiver:
      uid=10057
      testOnlyAdmin=false
      policies:
        force-lock
        wipe-data
      passwordQuality=0x0
      minimumPasswordLength=0
  mPasswordOwner=-1
"""

DEVICE_POLICY_ANDROID_10_OWNER = """\
Current Device Policy Manager state:
  Immutable state:
    mHasFeature=true
    mIsWatch=false
  Device Owner: 
    admin=ComponentInfo{com.example.mdm/com.example.mdm.receiver.AdminReceiver}
    name=
    package=com.example.mdm
    User ID: 0

  Profile Owner (User 10): 
    admin=ComponentInfo{com.example.work/com.example.work.WorkAdmin}
    name=Work
    package=com.example.work
    canAccessDeviceIds=false

  Enabled Device Admins (User 0, provisioningState: 3):
    com.example.mdm/.receiver.AdminReceiver:
      uid=10123
      policies:
        wipe-data
  Enabled Device Admins (User 10, provisioningState: 3):
    com.example.work/com.example.work.WorkAdmin:
      uid=1010145
"""  # noqa: W291

DEVICE_POLICY_ANDROID_14_NONE = """\
Current Device Policy Manager state:
  Immutable state:
    mHasFeature=true
  Device Owner Type: 0
  Enabled Device Admins (User 0, provisioningState: 0):

  mPasswordOwner=-1
  Encryption Status: per-user via FBE
"""


def test_device_policy_android_7_admin_without_owner() -> None:
    info = parse_device_owner(DEVICE_POLICY_ANDROID_7_ADMIN_ONLY)
    assert info.device_owner is None
    assert info.profile_owners == ()
    assert info.active_admins == (
        "com.pax.market.android.app/com.pax.market.android.app.receiver.DeviceAdminReceiver",
    )


def test_device_policy_android_10_owner_and_profile_owner() -> None:
    info = parse_device_owner(DEVICE_POLICY_ANDROID_10_OWNER)
    assert info.device_owner == "com.example.mdm"
    assert info.device_owner_component == "com.example.mdm/com.example.mdm.receiver.AdminReceiver"
    assert info.profile_owners == ((10, "com.example.work"),)
    assert info.active_admins == (
        "com.example.mdm/.receiver.AdminReceiver",
        "com.example.work/com.example.work.WorkAdmin",
    )


def test_device_policy_android_14_nothing() -> None:
    assert parse_device_owner(DEVICE_POLICY_ANDROID_14_NONE) == DevicePolicyInfo()


def test_device_policy_owner_by_package_line_only() -> None:
    text = "  Device Owner:\n    package=com.example.tms\n    User ID: 0\n"
    info = parse_device_owner(text)
    assert (info.device_owner, info.device_owner_component) == ("com.example.tms", None)


# =================================================================================================
# dumpsys account
# =================================================================================================

ACCOUNTS_ANDROID_7 = """\
User UserInfo{0:Owner:13}:
  Accounts: 1
    Account {name=kasse@example.com, type=com.google}

  Active Sessions: 0

  RegisteredServicesCache: 1 services
    ServiceInfo: AuthenticatorDescription {type=com.google}, ComponentInfo{com.google.android.gms/com.google.android.gms.auth.authenticator.GoogleAuthenticatorService}, uid 10014
"""  # noqa: E501

ACCOUNTS_ANDROID_13 = """\
User UserInfo{0:Owner:c13}:
  Accounts: 2
    Account {name=merchant-4711, type=com.sunmi.account}
    Account {name=shop, with comma@example.com, type=com.google}

User UserInfo{10:Work:30}:
  Accounts: 1
    Account {name=kasse@example.com, type=com.google}
"""

ACCOUNTS_ANDROID_14_NONE = """\
User UserInfo{0:Owner:c13}:
  Accounts: 0

  Active Sessions: 0
"""


def test_accounts() -> None:
    assert parse_accounts(ACCOUNTS_ANDROID_7) == [("com.google", "kasse@example.com")]
    assert parse_accounts(ACCOUNTS_ANDROID_13) == [
        ("com.sunmi.account", "merchant-4711"),
        ("com.google", "shop, with comma@example.com"),
        ("com.google", "kasse@example.com"),
    ]
    assert parse_accounts(ACCOUNTS_ANDROID_14_NONE) == []
    assert parse_accounts(ACCOUNTS_ANDROID_7 + ACCOUNTS_ANDROID_7) == parse_accounts(
        ACCOUNTS_ANDROID_7
    )


# =================================================================================================
# ls
# =================================================================================================


@pytest.mark.parametrize(
    ("text", "expected", "error"),
    [
        ("Download\nPAX\nbaseparam.ini\nmy receipts.pdf\n", None, None),
        (".\n..\nlog\n", ["log"], None),
        ("", [], None),
        ("ls: /sdcard/PAX/: No such file or directory\n", [], "missing"),
        ("ls: /data/data: Permission denied\n", [], "denied"),
        ("opendir failed, Permission denied\n", [], "denied"),  # Android 7 toolbox
        (
            "total 16\n"
            "drwxrwx--x 3 root sdcard_rw 4096 2023-05-01 10:22 PAX\n"
            "-rw-rw---- 1 u0_a57 sdcard_rw 2048 2023-05-01 10:23 my receipts.pdf\n"
            "lrwxrwxrwx 1 root root 21 2023-05-01 10:24 latest -> /sdcard/PAX/log.txt\n",
            ["PAX", "my receipts.pdf", "latest"],
            None,
        ),
        ("drwxrwx--- root     sdcard_r          2016-01-01 00:00 Download\n", ["Download"], None),
        ("/sdcard/PAX:\nparams.xml\n", ["params.xml"], None),
    ],
)
def test_ls(text: str, expected: list[str] | None, error: str | None) -> None:
    if expected is None:
        expected = text.split("\n")[:-1]
    assert parse_ls(text) == expected
    assert ls_error(text) == error


# =================================================================================================
# robustness: random text never raises, with or without the safety net
# =================================================================================================

_ALL_FIXTURES = [
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
]
_FIXTURE_LINES = sorted({line for text in _ALL_FIXTURES for line in text.splitlines()})

_NOISY_TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(
        st.one_of(
            st.sampled_from(_FIXTURE_LINES),
            st.sampled_from(_FIXTURE_LINES).map(lambda s: s[: len(s) // 2]),
            st.text(alphabet="[]{}(),=:-_ \t0123456789mlevelrsrpSSIDKa", max_size=60),
        ),
        max_size=40,
    ).map("\n".join),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)

_PARSERS = [
    parsers.parse_getprop,
    parsers.parse_settings_value,
    parsers.parse_dumpsys_battery,
    parsers.parse_telephony_registry,
    parsers.parse_dumpsys_wifi,
    parsers.parse_diskstats,
    parsers.parse_pm_list_packages,
    parsers.parse_device_owner,
    parsers.parse_accounts,
    parsers.parse_ls,
    parsers.ls_error,
]


@pytest.mark.parametrize("parser", _PARSERS, ids=lambda p: p.__name__)
@settings(max_examples=150, deadline=None)
@given(text=_NOISY_TEXT)
def test_parsers_never_raise_on_noise(parser, text: str) -> None:
    parser.__wrapped__(text)  # the code itself, without the safety net


@settings(max_examples=150, deadline=None)
@given(text=_NOISY_TEXT, package=st.text(max_size=30))
def test_package_version_never_raises_on_noise(text: str, package: str) -> None:
    parsers.parse_dumpsys_package_version.__wrapped__(text, package)


@pytest.mark.parametrize("parser", _PARSERS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("odd", [None, b"[a]: [b]\n", 42])
def test_parsers_accept_non_text(parser, odd: object) -> None:
    parser(odd)


def test_safety_net_logs_and_returns_the_empty_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_lines: object) -> list[str]:
        raise RuntimeError("boom")

    monkeypatch.setattr(parsers, "_lines", broken)
    assert parse_getprop("[a]: [b]") == {}
    assert parse_dumpsys_battery("level: 5") == BatteryInfo()
    assert parse_settings_value("1") is None
    assert parse_pm_list_packages("package:a") == []
