"""pyserial URL handlers provided by posdiag.

pyserial finds a handler for ``scheme://`` by importing ``<package>.protocol_<scheme>`` for each
package in ``serial.protocol_handler_packages``; ``posdiag.simulators.attach.register_url_handler``
adds this package there. Keep this module free of imports: pyserial treats any ImportError while
importing a handler as "protocol not known", which would hide the real problem.
"""
