# Example policy for the rego-policy plugin (used as is by its tests).
package portcullis

import rego.v1

# Every input gets a decision: deny unless a rule below says otherwise.
default decision := {"effect": "deny", "reason": "no rule allows this call"}

decision := {"effect": "deny", "reason": sprintf("service %s is frozen", [input.tool.service])} if {
	input.tool.service in data.frozen_services
} else := {"effect": "allow"} if {
	input.tool.safety.readOnly
} else := {"effect": "require-approval", "reason": "destructive call by an operator"} if {
	input.tool.safety.destructive
	"bundle:operators" in input.scopes
} else := {"effect": "allow"} if {
	not input.tool.safety.destructive
	"bundle:writers" in input.scopes
}
