package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/flowguard/flowguard/flow"
)

// Names of the functions conditions may call. The operator overloads are
// callable too, but operators are the documented way to reach them.
const (
	fnInCIDR     = "in_cidr"      // in_cidr(addr, "10.0.0.0/8")
	fnAddrInList = "addr_in_list" // addr in <CIDR list>
	fnAddrEq     = "addr_eq"      // addr == "10.0.0.1", "10.0.0.1" == addr
	fnAddrNe     = "addr_ne"      // addr != "10.0.0.1"
)

var reservedNames = []string{fnInCIDR, fnAddrInList, fnAddrEq, fnAddrNe}

// exprOptions are the options every condition compiles with, save the
// macro and list expander (which differs per compile) and the result kind.
var exprOptions = []expr.Option{
	expr.Env(flow.Flow{}),
	expr.Function(fnInCIDR, func(p ...any) (any, error) {
		pfx, err := parseAddrOrPrefix(p[1].(string))
		if err != nil {
			return nil, err
		}
		return prefixContains(pfx, p[0].(netip.Addr)), nil
	}, new(func(netip.Addr, string) bool)),
	expr.Function(fnAddrInList, func(p ...any) (any, error) {
		return p[1].(*AddrSet).Contains(p[0].(netip.Addr)), nil
	}, new(func(netip.Addr, *AddrSet) bool)),
	expr.Function(fnAddrEq, func(p ...any) (any, error) {
		eq, err := addrEqualString(p[0], p[1])
		return eq, err
	}, new(func(netip.Addr, string) bool), new(func(string, netip.Addr) bool)),
	expr.Function(fnAddrNe, func(p ...any) (any, error) {
		eq, err := addrEqualString(p[0], p[1])
		return !eq, err
	}, new(func(netip.Addr, string) bool), new(func(string, netip.Addr) bool)),
	expr.Operator("in", fnAddrInList),
	expr.Operator("==", fnAddrEq),
	expr.Operator("!=", fnAddrNe),
}

func addrEqualString(x, y any) (bool, error) {
	a, ok := x.(netip.Addr)
	s, _ := y.(string)
	if !ok {
		a, _ = y.(netip.Addr)
		s, _ = x.(string)
	}
	b, err := netip.ParseAddr(s)
	if err != nil {
		return false, err
	}
	return addrEqual(a, b), nil
}

// Condition is a compiled boolean expression over a flow. Eval runs typed
// Go closures built from the checked expression when every part of it is
// supported (Native), and an expr program on a pooled VM otherwise. It is
// safe for concurrent use.
type Condition struct {
	src     string
	eval    func(*flow.Flow) bool
	native  bool
	cost    int64
	nodes   int // after macro expansion
	program *vm.Program
	vms     sync.Pool
	// tree is the boolean structure of a Native condition, for Matcher.
	tree *bnode
	// errs counts the run-time errors of the expr VM; set by the rule
	// decoder before the condition runs, nil for macros.
	errs *EvalErrors
}

// String returns the condition's source.
func (c *Condition) String() string { return c.src }

// Eval reports whether the condition holds for f. A run-time error of the
// expr fallback (none is possible in native closures) counts as false and
// is counted in the rule's EvalErrors.
func (c *Condition) Eval(f *flow.Flow) bool { return c.eval(f) }

// Native reports whether Eval runs compiled closures (no allocation)
// rather than the expr VM.
func (c *Condition) Native() bool { return c.native }

// Cost is the condition's estimated worst-case cost per flow, in units of
// about one expression node evaluated (see Limits.MaxCost).
func (c *Condition) Cost() int64 { return c.cost }

// runVM evaluates the condition with the expr program.
func (c *Condition) runVM(f *flow.Flow) (bool, error) {
	m, _ := c.vms.Get().(*vm.VM)
	if m == nil {
		m = new(vm.VM)
	}
	out, err := m.Run(c.program, f)
	c.vms.Put(m)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// exprError is an error inside an expression: Line is 1-based, Col a
// 0-based rune column within that line of the expression.
type exprError struct {
	Line, Col int
	Msg       string
	limit     string // the broken limit, as a macro repeats it to its users
	inherited bool   // broken by a macro used, which reports it
}

func (e *exprError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col+1, e.Msg) }

// condCompiler compiles conditions against the lists and macros of one
// load.
type condCompiler struct {
	lists    map[string]*list
	macros   map[string]*macro
	limits   Limits
	closures *closureCompiler
}

type macro struct {
	name   string
	src    string
	broken bool   // it failed to compile; users get one short error
	list   bool   // a broken list, standing in as a broken macro
	limit  string // why it broke, when it broke a limit
	nodes  int    // nodes once expanded, 0 until compiled
}

func (m *macro) what() string {
	if m.list {
		return "list"
	}
	return "macro"
}

// lineCol converts a rune offset in src to a 1-based line and 0-based column.
func lineCol(src string, off int) (int, int) {
	line, col, n := 1, 0, 0
	for _, r := range src {
		if n == off {
			break
		}
		n++
		if r == '\n' {
			line++
			col = 0
		} else {
			col++
		}
	}
	return line, col
}

// expander is the expr patch visitor that replaces list names by their
// typed constant and macro names by the macro's parsed expression.
// Expansion is bounded: every node visited takes one from budget (shared
// with the expanders of nested macros), and a macro whose expanded size
// is known to exceed what is left is not expanded at all, so a macro bomb
// is never built.
type expander struct {
	c      *condCompiler
	cfg    *conf.Config
	stack  []string
	errs   []locError
	budget *int
}

type locError struct {
	loc       file.Location
	msg       string
	limit     string // set when the error is a broken limit
	inherited bool   // the limit was broken by a macro used, and reported there
}

func (x *expander) Visit(n *ast.Node) {
	*x.budget--
	id, ok := (*n).(*ast.IdentifierNode)
	if !ok {
		return
	}
	if l, ok := x.c.lists[id.Value]; ok {
		ast.Patch(n, &ast.ConstantNode{Value: l.value})
		return
	}
	m, ok := x.c.macros[id.Value]
	if !ok {
		return
	}
	loc := id.Location()
	for i, s := range x.stack {
		if s == m.name {
			cycle := append(append([]string(nil), x.stack[i:]...), m.name)
			x.errs = append(x.errs, locError{loc: loc, msg: "recursive macro: " + strings.Join(cycle, " → ")})
			return
		}
	}
	if m.broken && m.limit != "" {
		if !x.overBudget() {
			x.errs = append(x.errs, locError{loc, fmt.Sprintf("macro %q: %s", m.name, m.limit), m.limit, true})
		}
		return
	}
	if m.broken {
		x.errs = append(x.errs, locError{loc: loc, msg: fmt.Sprintf("%s %q has errors", m.what(), m.name)})
		return
	}
	if *x.budget < 0 || m.nodes > *x.budget {
		if !x.overBudget() {
			x.errs = append(x.errs, locError{loc, fmt.Sprintf("expanding macro %q takes the condition past %d nodes (limit max_nodes)",
				m.name, x.c.limits.MaxNodes), nodesExceeded(x.c.limits.MaxNodes), false})
		}
		return
	}
	tree, err := parser.ParseWithConfig(m.src, x.cfg)
	if err != nil {
		x.errs = append(x.errs, locError{loc: loc, msg: fmt.Sprintf("macro %q has errors", m.name)})
		return
	}
	sub := &expander{c: x.c, cfg: x.cfg, stack: append(append([]string(nil), x.stack...), m.name), budget: x.budget}
	ast.Walk(&tree.Node, sub)
	for _, e := range sub.errs {
		if e.limit != "" && x.overBudget() {
			continue // one node-limit error per condition
		}
		x.errs = append(x.errs, locError{loc, e.msg, e.limit, e.inherited})
	}
	// Errors inside the macro point at its name in the condition.
	ast.Walk(&tree.Node, locSetter(loc))
	ast.Patch(n, tree.Node)
}

// overBudget reports whether a limit error is already recorded: one is
// enough per condition.
func (x *expander) overBudget() bool {
	for _, e := range x.errs {
		if e.limit != "" {
			return true
		}
	}
	return false
}

type locSetter file.Location

func (l locSetter) Visit(n *ast.Node) { (*n).SetLocation(file.Location(l)) }

// compile parses, expands, type-checks and compiles src. With wantBool the
// result must be a bool; macros pass false. stack names the macros being
// compiled (to report recursion from the macro's own definition).
func (c *condCompiler) compile(src string, wantBool bool, stack ...string) (*Condition, []*exprError) {
	cfg := conf.CreateNew()
	for _, o := range exprOptions {
		o(cfg)
	}
	budget := c.limits.MaxNodes
	x := &expander{c: c, cfg: cfg, stack: stack, budget: &budget}
	expr.Patch(x)(cfg)
	if wantBool {
		expr.AsBool()(cfg)
	}
	cfg.Check()

	tree, err := checker.ParseCheck(src, cfg)
	if len(x.errs) > 0 {
		// Expansion errors come first; the checker's complaints about the
		// names left unexpanded would only repeat them.
		return nil, locErrors(src, x.errs)
	}
	if err != nil {
		return nil, []*exprError{c.convertError(src, err)}
	}
	if errs := checkLimits(tree.Node, c.limits); len(errs) > 0 {
		return nil, locErrors(src, errs)
	}
	if errs := validateConstants(src, tree.Node); len(errs) > 0 {
		return nil, errs
	}
	cond := &Condition{src: src}
	if wantBool {
		v, err := c.closures.compileNode(tree.Node)
		if err == nil && v.k == kBool {
			cond.eval, cond.native = v.b, true
			cond.tree = c.closures.info[tree.Node].bn
		}
		clear(c.closures.info)
		if le := (*loadError)(nil); errors.As(err, &le) {
			l, col := lineCol(src, le.loc.From)
			return nil, []*exprError{{Line: l, Col: col, Msg: le.msg}}
		}
	}
	cond.cost = conditionCost(tree.Node, cond.native, c.limits)
	if wantBool && cond.cost > c.limits.MaxCost {
		msg := fmt.Sprintf("estimated cost per flow %d is above the limit of %d (max_cost; rules validate --cost shows every rule's)",
			cond.cost, c.limits.MaxCost)
		return nil, []*exprError{{Line: 1, Col: 0, Msg: msg, limit: msg}}
	}
	cond.nodes = countNodes(tree.Node)
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		return nil, []*exprError{c.convertError(src, err)}
	}
	cond.program, err = compiler.Compile(tree, cfg)
	if err != nil {
		return nil, []*exprError{c.convertError(src, err)}
	}
	if cond.eval == nil {
		cond.eval = func(f *flow.Flow) bool {
			ok, err := cond.runVM(f)
			if err != nil {
				cond.errs.record(cond.src, err)
			}
			return ok
		}
	}
	return cond, nil
}

// locErrors converts errors located in src.
func locErrors(src string, les []locError) []*exprError {
	errs := make([]*exprError, len(les))
	for i, e := range les {
		l, col := lineCol(src, e.loc.From)
		errs[i] = &exprError{l, col, e.msg, e.limit, e.inherited}
	}
	return errs
}

func (c *condCompiler) convertError(src string, err error) *exprError {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &exprError{Line: 1, Col: 0, Msg: err.Error()}
	}
	l, col := lineCol(src, fe.From)
	msg := fe.Message
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		msg += didYouMean(name, c.names())
	}
	return &exprError{Line: l, Col: col, Msg: msg}
}

// names returns every name a condition may use: fields, lists, macros.
func (c *condCompiler) names() []string {
	names := flow.FieldNames()
	for n := range c.lists {
		names = append(names, n)
	}
	for n := range c.macros {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// validateConstants checks the constant arguments that helper functions
// parse (addresses, prefixes): a bad one is a load error, not a run-time
// surprise, and the closures can rely on them.
func validateConstants(src string, root ast.Node) []*exprError {
	v := &constValidator{}
	ast.Walk(&root, v)
	errs := make([]*exprError, len(v.errs))
	for i, e := range v.errs {
		l, col := lineCol(src, e.loc.From)
		errs[i] = &exprError{Line: l, Col: col, Msg: e.msg}
	}
	return errs
}

type constValidator struct{ errs []locError }

func (v *constValidator) Visit(n *ast.Node) {
	call, ok := (*n).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || len(call.Arguments) != 2 {
		return
	}
	switch id.Value {
	case fnInCIDR:
		s, ok := call.Arguments[1].(*ast.StringNode)
		if !ok {
			v.errs = append(v.errs, locError{loc: call.Arguments[1].Location(), msg: "in_cidr: the prefix must be a constant string"})
			return
		}
		if _, err := parseAddrOrPrefix(s.Value); err != nil {
			v.errs = append(v.errs, locError{loc: s.Location(), msg: "in_cidr: " + err.Error()})
		}
	case fnAddrEq, fnAddrNe:
		arg := call.Arguments[1]
		if _, isStr := call.Arguments[0].(*ast.StringNode); isStr {
			arg = call.Arguments[0]
		}
		s, ok := arg.(*ast.StringNode)
		if !ok {
			v.errs = append(v.errs, locError{loc: call.Location(), msg: "an address compares with another address or a constant string"})
			return
		}
		if _, err := netip.ParseAddr(s.Value); err != nil {
			v.errs = append(v.errs, locError{loc: s.Location(), msg: fmt.Sprintf("%q is not an IP address", s.Value)})
		}
	}
}
