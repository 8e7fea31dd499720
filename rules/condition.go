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
	program *vm.Program
	vms     sync.Pool
}

// String returns the condition's source.
func (c *Condition) String() string { return c.src }

// Eval reports whether the condition holds for f. A run-time error of the
// expr fallback (none is possible in native closures) counts as false.
func (c *Condition) Eval(f *flow.Flow) bool { return c.eval(f) }

// Native reports whether Eval runs compiled closures (no allocation)
// rather than the expr VM.
func (c *Condition) Native() bool { return c.native }

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
}

func (e *exprError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col+1, e.Msg) }

// condCompiler compiles conditions against the lists and macros of one
// load.
type condCompiler struct {
	lists  map[string]*list
	macros map[string]*macro
}

type macro struct {
	name   string
	src    string
	broken bool // it failed to compile; users get one short error
	list   bool // a broken list, standing in as a broken macro
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
type expander struct {
	c     *condCompiler
	cfg   *conf.Config
	stack []string
	errs  []locError
}

type locError struct {
	loc file.Location
	msg string
}

func (x *expander) Visit(n *ast.Node) {
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
			x.errs = append(x.errs, locError{loc, "recursive macro: " + strings.Join(cycle, " → ")})
			return
		}
	}
	if m.broken {
		x.errs = append(x.errs, locError{loc, fmt.Sprintf("%s %q has errors", m.what(), m.name)})
		return
	}
	tree, err := parser.ParseWithConfig(m.src, x.cfg)
	if err != nil {
		x.errs = append(x.errs, locError{loc, fmt.Sprintf("macro %q has errors", m.name)})
		return
	}
	sub := &expander{c: x.c, cfg: x.cfg, stack: append(append([]string(nil), x.stack...), m.name)}
	ast.Walk(&tree.Node, sub)
	for _, e := range sub.errs {
		x.errs = append(x.errs, locError{loc, e.msg})
	}
	// Errors inside the macro point at its name in the condition.
	ast.Walk(&tree.Node, locSetter(loc))
	ast.Patch(n, tree.Node)
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
	x := &expander{c: c, cfg: cfg, stack: stack}
	expr.Patch(x)(cfg)
	if wantBool {
		expr.AsBool()(cfg)
	}
	cfg.Check()

	tree, err := checker.ParseCheck(src, cfg)
	if len(x.errs) > 0 {
		// Expansion errors come first; the checker's complaints about the
		// names left unexpanded would only repeat them.
		errs := make([]*exprError, len(x.errs))
		for i, e := range x.errs {
			l, col := lineCol(src, e.loc.From)
			errs[i] = &exprError{l, col, e.msg}
		}
		return nil, errs
	}
	if err != nil {
		return nil, []*exprError{c.convertError(src, err)}
	}
	if errs := validateConstants(src, tree.Node); len(errs) > 0 {
		return nil, errs
	}
	cond := &Condition{src: src}
	if wantBool {
		if v, err := compileNode(tree.Node); err == nil && v.k == kBool {
			cond.eval, cond.native = v.b, true
		} else if le := (*loadError)(nil); errors.As(err, &le) {
			l, col := lineCol(src, le.loc.From)
			return nil, []*exprError{{l, col, le.msg}}
		}
	}
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		return nil, []*exprError{c.convertError(src, err)}
	}
	cond.program, err = compiler.Compile(tree, cfg)
	if err != nil {
		return nil, []*exprError{c.convertError(src, err)}
	}
	if cond.eval == nil {
		cond.eval = func(f *flow.Flow) bool {
			ok, _ := cond.runVM(f)
			return ok
		}
	}
	return cond, nil
}

func (c *condCompiler) convertError(src string, err error) *exprError {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return &exprError{1, 0, err.Error()}
	}
	l, col := lineCol(src, fe.From)
	msg := fe.Message
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		msg += didYouMean(name, c.names())
	}
	return &exprError{l, col, msg}
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
		errs[i] = &exprError{l, col, e.msg}
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
			v.errs = append(v.errs, locError{call.Arguments[1].Location(), "in_cidr: the prefix must be a constant string"})
			return
		}
		if _, err := parseAddrOrPrefix(s.Value); err != nil {
			v.errs = append(v.errs, locError{s.Location(), "in_cidr: " + err.Error()})
		}
	case fnAddrEq, fnAddrNe:
		arg := call.Arguments[1]
		if _, isStr := call.Arguments[0].(*ast.StringNode); isStr {
			arg = call.Arguments[0]
		}
		s, ok := arg.(*ast.StringNode)
		if !ok {
			v.errs = append(v.errs, locError{call.Location(), "an address compares with another address or a constant string"})
			return
		}
		if _, err := netip.ParseAddr(s.Value); err != nil {
			v.errs = append(v.errs, locError{s.Location(), fmt.Sprintf("%q is not an IP address", s.Value)})
		}
	}
}
