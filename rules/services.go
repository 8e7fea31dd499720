package rules

import "strconv"

// Service names for the ports that alerts about reflection, floods and
// brute force talk about, rendered by the `{field:service}` filter of a
// message template ("{src_port:service}" writes "ntp" for 123). Names
// follow IANA's service registry where it has a common one, and the name
// operators use otherwise (ssdp, ws-discovery, memcached). A port has one
// name whatever the protocol: where TCP and UDP differ in use, the name is
// the one of the attack that uses the port (389 is LDAP, reflected over
// UDP as CLDAP).
var services = map[uint16]string{
	17: "qotd", 19: "chargen", 21: "ftp", 22: "ssh", 23: "telnet",
	25: "smtp", 53: "dns", 69: "tftp", 80: "http", 110: "pop3",
	111: "portmap", 123: "ntp", 137: "netbios-ns", 143: "imap",
	161: "snmp", 389: "cldap", 427: "slp", 443: "https", 445: "smb",
	465: "smtps", 520: "rip", 587: "submission", 636: "ldaps",
	993: "imaps", 995: "pop3s", 1433: "mssql", 1434: "mssql-browser",
	1521: "oracle", 1900: "ssdp", 3283: "ard", 3306: "mysql", 3389: "rdp",
	3702: "ws-discovery", 5060: "sip", 5353: "mdns", 5432: "postgresql",
	5683: "coap", 5900: "vnc", 5985: "winrm", 6379: "redis",
	10001: "ubiquiti", 11211: "memcached", 27015: "steam", 27017: "mongodb",
}

// ServiceName returns the service name of a port, or "" when the table
// has none.
func ServiceName(port uint16) string { return services[port] }

// serviceOf renders a port's text as its service name; text that is not a
// named port is returned as it is, so "{src_port:service}" never hides the
// number behind an empty string.
func serviceOf(text string) string {
	p, err := strconv.ParseUint(text, 10, 16)
	if err != nil {
		return text
	}
	if name := services[uint16(p)]; name != "" {
		return name
	}
	return text
}
