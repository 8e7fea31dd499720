// Package all registers every notifier type flowguard ships. The daemon
// imports it for its side effect; adding a notifier adds one line here.
package all

import (
	_ "github.com/flowguard/flowguard/notifiers/file"     // type: file
	_ "github.com/flowguard/flowguard/notifiers/snmptrap" // type: snmptrap
	_ "github.com/flowguard/flowguard/notifiers/stdout"   // type: stdout
	_ "github.com/flowguard/flowguard/notifiers/syslog"   // type: syslog
	_ "github.com/flowguard/flowguard/notifiers/webhook"  // type: webhook

	_ "github.com/flowguard/flowguard/notifiers/alertmanager" // type: alertmanager
)
