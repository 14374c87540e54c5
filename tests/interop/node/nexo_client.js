// The official Adyen Node.js library, unmodified, as a Terminal API client of a nexo terminal.
//
// Usage: node nexo_client.js CONFIG_JSON
// CONFIG_JSON: {"endpoint": "https://127.0.0.1:PORT", "ca": "/path/ca.pem", "poiid": "V400m-…",
//               "key": {"KeyIdentifier": …, "KeyVersion": 1, "AdyenCryptoVersion": 1,
//                       "Passphrase": …},
//               "calls": ["Diagnosis", "Login", "GetTotals", "Logout"]}
// Prints one JSON line per call: {"call", "ok", "response" | "error", "errorType"}.
// Nothing here works around the library: the endpoint form `…/nexo?` is the documented way to
// reach a port other than 8443 (the library appends `:8443/nexo/`, which then sits in the query).
"use strict";

const { Client, Config, TerminalLocalAPI } = require("@adyen/api-library");

const settings = JSON.parse(process.argv[2]);
const config = new Config();
config.environment = "TEST";
config.apiKey = "posdiag-interop"; // required by the library, ignored by a terminal
config.terminalApiLocalEndpoint = `${settings.endpoint}/nexo?`;
config.certificatePath = settings.ca;
const api = new TerminalLocalAPI(new Client(config));

let serial = 0;
function header(category) {
  serial += 1;
  return {
    ProtocolVersion: "3.0",
    MessageClass: "Service",
    MessageCategory: category,
    MessageType: "Request",
    ServiceID: `${settings.servicePrefix || "N"}${Date.now() % 100000}${serial}`.slice(0, 10),
    SaleID: "NodeInterop",
    POIID: settings.poiid,
  };
}

const bodies = {
  Diagnosis: () => ({ DiagnosisRequest: { HostDiagnosisFlag: false } }),
  Login: () => ({
    LoginRequest: {
      DateTime: new Date().toISOString(),
      SaleSoftware: {
        ManufacturerID: "posdiag",
        ApplicationName: "interop",
        SoftwareVersion: "1.0",
        CertificationCode: "none",
      },
      OperatorLanguage: "en",
    },
  }),
  GetTotals: () => ({ GetTotalsRequest: {} }),
  Logout: () => ({ LogoutRequest: {} }),
};

async function main() {
  for (const call of settings.calls) {
    const request = { SaleToPOIRequest: { MessageHeader: header(call), ...bodies[call]() } };
    try {
      const response = await api.request(request, settings.key);
      console.log(JSON.stringify({ call, ok: true, response }));
    } catch (error) {
      console.log(
        JSON.stringify({
          call,
          ok: false,
          errorType: error && error.constructor ? error.constructor.name : typeof error,
          error: String(error && error.message ? error.message : error),
        }),
      );
    }
  }
}

main().catch((error) => {
  console.error(String(error));
  process.exit(2);
});
