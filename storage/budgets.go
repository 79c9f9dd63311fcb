package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrBudgetExceeded: a payment would go over a budget limit. The error is
// a *BudgetError saying which.
var ErrBudgetExceeded = errors.New("budget exceeded")

// Budget limit names, as BudgetError.Limit reports them.
const (
	LimitPerPayment = "perPaymentSats"
	LimitPerDay     = "perDaySats"
	LimitPerDomain  = "perDomainSats"
	// LimitUnapproved is the rolling hour's cap on payments made without
	// a person's approval: beyond it, a payment needs approval.
	LimitUnapproved = "unapprovedPerHourSats"
)

// UnapprovedWindow is the rolling window of the unapproved-spend cap.
const UnapprovedWindow = time.Hour

// MaxBudgetSats bounds every limit: 21 million bitcoin.
const MaxBudgetSats = 21_000_000 * 100_000_000

// MaxDomainListLen bounds each of the allow and deny lists.
const MaxDomainListLen = 1000

// Limits that apply until limits are stored: the absence of a budget
// never means an unlimited one.
const (
	DefaultPerPaymentSats        = 1_000
	DefaultPerDaySats            = 10_000
	DefaultUnapprovedPerHourSats = 5_000
)

// DefaultBudgetLimits returns the limits that apply until limits are stored.
func DefaultBudgetLimits() BudgetLimits {
	return BudgetLimits{PerPaymentSats: DefaultPerPaymentSats, PerDaySats: DefaultPerDaySats, UnapprovedPerHourSats: DefaultUnapprovedPerHourSats}
}

// BudgetLimits caps what the consumer may spend. A zero limit means no
// limit of that kind. Days are UTC calendar days: a payment counts
// against the day (and the domain's day) on which it was reserved.
type BudgetLimits struct {
	// PerPaymentSats caps one payment's amount (fees not included).
	PerPaymentSats int64
	// PerDaySats caps the amount plus fees of all payments of a day.
	PerDaySats int64
	// PerDomainSats caps the amount plus fees of one domain's payments
	// of a day. Payments without a domain (a bare invoice) only count
	// against PerDaySats.
	PerDomainSats int64
	// UnapprovedPerHourSats caps the amount plus fee limit of payments
	// made without a person's approval in any rolling hour, so that
	// payments split under an approval threshold still meet one.
	UnapprovedPerHourSats int64
	// AllowDomains and DenyDomains are domain patterns ("example.com",
	// "*.example.com"); the store keeps them, the consumer applies them.
	AllowDomains []string
	DenyDomains  []string
	// UpdatedAt is when the limits were last stored; set by PutBudgetLimits.
	UpdatedAt time.Time
}

// Validate checks the limits' ranges and list sizes.
func (l BudgetLimits) Validate() error {
	for _, v := range []struct {
		name string
		n    int64
	}{{LimitPerPayment, l.PerPaymentSats}, {LimitPerDay, l.PerDaySats}, {LimitPerDomain, l.PerDomainSats}, {LimitUnapproved, l.UnapprovedPerHourSats}} {
		if v.n < 0 || v.n > MaxBudgetSats {
			return fmt.Errorf("storage: %w: %s must be 0 (no limit) to %d, got %d", ErrInvalid, v.name, int64(MaxBudgetSats), v.n)
		}
	}
	if len(l.AllowDomains) > MaxDomainListLen || len(l.DenyDomains) > MaxDomainListLen {
		return fmt.Errorf("storage: %w: at most %d domains per list", ErrInvalid, MaxDomainListLen)
	}
	for _, d := range append(append([]string(nil), l.AllowDomains...), l.DenyDomains...) {
		if d == "" || len(d) > 255 || strings.ContainsRune(d, 0) {
			return fmt.Errorf("storage: %w: domain pattern %q must be 1 to 255 bytes", ErrInvalid, d)
		}
	}
	return nil
}

// BudgetError says which limit a payment would exceed and by how much.
type BudgetError struct {
	// Limit is LimitPerPayment, LimitPerDay or LimitPerDomain.
	Limit     string
	LimitSats int64
	// Domain is the domain whose budget is exhausted (LimitPerDomain).
	Domain string
	// Day is the UTC day the payment counts against (midnight).
	Day time.Time
	// SpentMsat and ReservedMsat are what the window already holds;
	// RequestedMsat is what the payment needs (amount + fee limit, or the
	// amount alone for LimitPerPayment).
	SpentMsat, ReservedMsat, RequestedMsat int64
}

func (e *BudgetError) Error() string {
	if e.Limit == LimitUnapproved {
		return fmt.Sprintf("approval required: %s sat (amount + fee limit) would go over the %d sat that may be spent without a person's approval "+
			"in any hour (%s sat in the last hour)", fmtMsat(e.RequestedMsat), e.LimitSats, fmtMsat(e.SpentMsat))
	}
	if e.Limit == LimitPerPayment {
		return fmt.Sprintf("budget exceeded: the payment of %s sat is above the per-payment limit of %d sat",
			fmtMsat(e.RequestedMsat), e.LimitSats)
	}
	what := "the daily budget"
	if e.Limit == LimitPerDomain {
		what = "the daily budget of " + e.Domain
	}
	return fmt.Sprintf("budget exceeded: %s sat (amount + fee limit) would go over %s of %d sat for UTC day %s "+
		"(%s sat spent, %s sat reserved by payments in flight)",
		fmtMsat(e.RequestedMsat), what, e.LimitSats, e.Day.Format(time.DateOnly), fmtMsat(e.SpentMsat), fmtMsat(e.ReservedMsat))
}

// Is makes errors.Is(err, ErrBudgetExceeded) true.
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExceeded }

// fmtMsat renders msat as sats, with decimals only when needed.
func fmtMsat(msat int64) string {
	if msat%1000 == 0 {
		return fmt.Sprint(msat / 1000)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", float64(msat)/1000), "0")
}

// BudgetCounter is what one budget window holds.
type BudgetCounter struct {
	SpentMsat    int64 // paid: amount + fee of succeeded payments
	ReservedMsat int64 // held: amount + fee limit of payments not final yet
}

// DomainUsage is one domain's counter of a day.
type DomainUsage struct {
	Domain string
	BudgetCounter
}

// BudgetUsage is one UTC day's spending.
type BudgetUsage struct {
	Day     time.Time // midnight UTC
	Total   BudgetCounter
	Domains []DomainUsage // domains with any spending that day, by name
}

// PutBudgetLimits durably replaces the budget limits.
func (s *Store) PutBudgetLimits(ctx context.Context, l BudgetLimits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	l.UpdatedAt = s.now()
	v := encodeBudgetLimits(l)
	return s.update(ctx, true, func(txn kvTxn) error {
		return txn.Set([]byte(keyBudgetLimits), v)
	})
}

// BudgetLimits returns the stored limits; found is false when none were
// ever stored, and then l is DefaultBudgetLimits().
func (s *Store) BudgetLimits(ctx context.Context) (l BudgetLimits, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return l, false, err
	}
	err = s.db.View(ctx, func(txn kvTxn) error {
		l, found, err = getBudgetLimits(txn)
		return err
	})
	return l, found, err
}

// BudgetUsage returns the counters of the UTC day containing t.
func (s *Store) BudgetUsage(ctx context.Context, t time.Time) (BudgetUsage, error) {
	if err := ctx.Err(); err != nil {
		return BudgetUsage{}, err
	}
	day := dayOf(t)
	u := BudgetUsage{Day: dayStart(day)}
	err := s.db.View(ctx, func(txn kvTxn) error {
		var err error
		if u.Total, err = getBudgetCounter(txn, budgetDayKey(day)); err != nil {
			return err
		}
		prefix := budgetDomainKey(day, "")
		decode := func(k, v []byte) (DomainUsage, error) {
			c, err := decodeBudgetCounter(k, v)
			return DomainUsage{Domain: string(k[len(prefix):]), BudgetCounter: c}, err
		}
		return scan(ctx, txn, prefix, decode, func(d DomainUsage) error {
			u.Domains = append(u.Domains, d)
			return nil
		})
	})
	return u, err
}

// CheckBudget reports, without reserving anything, whether a payment of
// amountMsat with a fee limit of feeLimitMsat for domain would fit the
// budget now: nil, or a *BudgetError. An unapproved payment (no person
// approved it) is also held to the rolling unapproved-spend cap.
func (s *Store) CheckBudget(ctx context.Context, amountMsat, feeLimitMsat int64, domain string, unapproved bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.now()
	return s.db.View(ctx, func(txn kvTxn) error {
		if err := checkBudgetTxn(txn, dayOf(now), domain, amountMsat, feeLimitMsat); err != nil {
			return err
		}
		if unapproved {
			return checkUnapprovedTxn(txn, now, amountMsat, feeLimitMsat)
		}
		return nil
	})
}

// minuteOf is t's Unix minute.
func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

// checkUnapprovedTxn checks an unapproved payment against the rolling
// hour's cap. Reading every minute's counter inside an update
// transaction makes concurrent reservations conflict.
func checkUnapprovedTxn(txn kvTxn, now time.Time, amountMsat, feeLimitMsat int64) error {
	l, _, err := getBudgetLimits(txn)
	if err != nil || l.UnapprovedPerHourSats <= 0 {
		return err
	}
	used, err := unapprovedUsed(txn, now)
	if err != nil {
		return err
	}
	need := satAdd(amountMsat, feeLimitMsat)
	if satAdd(used, need) > l.UnapprovedPerHourSats*1000 {
		return &BudgetError{Limit: LimitUnapproved, LimitSats: l.UnapprovedPerHourSats, Day: dayStart(dayOf(now)), SpentMsat: used, RequestedMsat: need}
	}
	return nil
}

// unapprovedUsed sums the unapproved counters of the rolling window
// ending at now.
func unapprovedUsed(txn kvTxn, now time.Time) (int64, error) {
	m := minuteOf(now)
	var sum int64
	for i := range int64(UnapprovedWindow / time.Minute) {
		c, err := getBudgetCounter(txn, unapprovedKey(m-i))
		if err != nil {
			return 0, err
		}
		sum = satAdd(sum, satAdd(c.SpentMsat, c.ReservedMsat))
	}
	return sum, nil
}

// addUnapproved adds d to minute m's unapproved counter. Counters live
// twice the window, then Badger drops them.
func addUnapproved(txn kvTxn, m int64, d BudgetCounter) error {
	k := unapprovedKey(m)
	c, err := getBudgetCounter(txn, k)
	if err != nil {
		return err
	}
	c.SpentMsat = max(0, satAdd(c.SpentMsat, d.SpentMsat))
	c.ReservedMsat = max(0, satAdd(c.ReservedMsat, d.ReservedMsat))
	return txn.SetTTL(k, encodeBudgetCounter(c), 2*UnapprovedWindow)
}

// checkBudgetTxn reads the limits and the day's counters and checks a
// payment against them. Inside an update transaction, the reads make a
// concurrent reservation of the same day conflict, so two payments can
// never both take the last of a budget.
func checkBudgetTxn(txn kvTxn, day int64, domain string, amountMsat, feeLimitMsat int64) error {
	l, _, err := getBudgetLimits(txn)
	if err != nil {
		return err
	}
	dayC, err := getBudgetCounter(txn, budgetDayKey(day))
	if err != nil {
		return err
	}
	var domC BudgetCounter
	if domain != "" {
		if domC, err = getBudgetCounter(txn, budgetDomainKey(day, domain)); err != nil {
			return err
		}
	}
	return CheckBudgetLimits(l, day, domain, dayC, domC, amountMsat, feeLimitMsat)
}

// CheckBudgetLimits is the budget arithmetic: whether a payment of
// amountMsat, reserving amountMsat+feeLimitMsat, fits limits given what
// day and domain windows already hold. It returns nil or a *BudgetError.
func CheckBudgetLimits(l BudgetLimits, day int64, domain string, dayC, domC BudgetCounter, amountMsat, feeLimitMsat int64) error {
	need := satAdd(amountMsat, feeLimitMsat)
	if l.PerPaymentSats > 0 && amountMsat > l.PerPaymentSats*1000 {
		return &BudgetError{Limit: LimitPerPayment, LimitSats: l.PerPaymentSats, Day: dayStart(day), RequestedMsat: amountMsat}
	}
	if l.PerDaySats > 0 && satAdd(satAdd(dayC.SpentMsat, dayC.ReservedMsat), need) > l.PerDaySats*1000 {
		return &BudgetError{Limit: LimitPerDay, LimitSats: l.PerDaySats, Day: dayStart(day),
			SpentMsat: dayC.SpentMsat, ReservedMsat: dayC.ReservedMsat, RequestedMsat: need}
	}
	if domain != "" && l.PerDomainSats > 0 && satAdd(satAdd(domC.SpentMsat, domC.ReservedMsat), need) > l.PerDomainSats*1000 {
		return &BudgetError{Limit: LimitPerDomain, LimitSats: l.PerDomainSats, Domain: domain, Day: dayStart(day),
			SpentMsat: domC.SpentMsat, ReservedMsat: domC.ReservedMsat, RequestedMsat: need}
	}
	return nil
}

// satAdd adds without overflowing.
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}

// addBudget adds d to the day's counter and, if domain is set, to the
// domain's. Counters never go below zero: a release finding less than it
// releases (a damaged counter) clamps rather than underflows.
func addBudget(txn kvTxn, day int64, domain string, d BudgetCounter) error {
	keys := [][]byte{budgetDayKey(day)}
	if domain != "" {
		keys = append(keys, budgetDomainKey(day, domain))
	}
	for _, k := range keys {
		c, err := getBudgetCounter(txn, k)
		if err != nil {
			return err
		}
		c.SpentMsat = max(0, satAdd(c.SpentMsat, d.SpentMsat))
		c.ReservedMsat = max(0, satAdd(c.ReservedMsat, d.ReservedMsat))
		if err := txn.Set(k, encodeBudgetCounter(c)); err != nil {
			return err
		}
	}
	return nil
}

func getBudgetCounter(txn kvTxn, k []byte) (BudgetCounter, error) {
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return BudgetCounter{}, nil
	}
	if err != nil {
		return BudgetCounter{}, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	var c BudgetCounter
	err = item.Value(func(v []byte) error {
		c, err = decodeBudgetCounter(k, v)
		return err
	})
	return c, err
}

func encodeBudgetCounter(c BudgetCounter) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(c.SpentMsat))
	return binary.BigEndian.AppendUint64(b, uint64(c.ReservedMsat))
}

func decodeBudgetCounter(k, v []byte) (BudgetCounter, error) {
	if len(v) != 16 {
		return BudgetCounter{}, corrupt(k, "budget counter is %d bytes, want 16", len(v))
	}
	c := BudgetCounter{SpentMsat: int64(binary.BigEndian.Uint64(v)), ReservedMsat: int64(binary.BigEndian.Uint64(v[8:]))}
	if c.SpentMsat < 0 || c.ReservedMsat < 0 {
		return BudgetCounter{}, corrupt(k, "negative budget counter")
	}
	return c, nil
}

func getBudgetLimits(txn kvTxn) (BudgetLimits, bool, error) {
	k := []byte(keyBudgetLimits)
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return DefaultBudgetLimits(), false, nil
	}
	if err != nil {
		return BudgetLimits{}, false, fmt.Errorf("storage: reading %s: %w", keyBudgetLimits, err)
	}
	var l BudgetLimits
	err = item.Value(func(v []byte) error {
		l, err = decodeBudgetLimits(k, v)
		return err
	})
	return l, err == nil, err
}

// budgetLimitsFormat is the first byte of encoded limits. Format 1 had
// no unapproved cap (it decodes as none).
const budgetLimitsFormat = 2

// encodeBudgetLimits lays limits out as
//
//	format 2 ‖ varint per payment, per day, per domain (sats), updated (Unix ns)
//	‖ uvarint n ‖ n allowed patterns ‖ uvarint m ‖ m denied patterns
//	‖ varint unapproved per hour (sats; format 2 only)
//
// with each pattern a uvarint length and its bytes.
func encodeBudgetLimits(l BudgetLimits) []byte {
	b := []byte{budgetLimitsFormat}
	b = binary.AppendVarint(b, l.PerPaymentSats)
	b = binary.AppendVarint(b, l.PerDaySats)
	b = binary.AppendVarint(b, l.PerDomainSats)
	b = binary.AppendVarint(b, unixNanos(l.UpdatedAt))
	for _, list := range [][]string{l.AllowDomains, l.DenyDomains} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, d := range list {
			b = appendString(b, d)
		}
	}
	return binary.AppendVarint(b, l.UnapprovedPerHourSats)
}

func decodeBudgetLimits(k, v []byte) (BudgetLimits, error) {
	r := reader{b: v}
	f := r.byte()
	if r.err == nil && f != 1 && f != budgetLimitsFormat {
		return BudgetLimits{}, corrupt(k, "unknown budget limits format %d", f)
	}
	var l BudgetLimits
	l.PerPaymentSats = r.varint()
	l.PerDaySats = r.varint()
	l.PerDomainSats = r.varint()
	l.UpdatedAt = fromUnixNanos(r.varint())
	for _, list := range []*[]string{&l.AllowDomains, &l.DenyDomains} {
		n := r.uvarint()
		// Each pattern takes at least one byte: a count beyond what is
		// left is damage, not a reason to allocate.
		if r.err == nil && n > uint64(len(r.b)) {
			r.fail(errShort)
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			*list = append(*list, r.string())
		}
	}
	if f >= 2 {
		l.UnapprovedPerHourSats = r.varint()
	}
	if err := r.done(); err != nil {
		return BudgetLimits{}, corrupt(k, "budget limits: %v", err)
	}
	if err := l.Validate(); err != nil {
		return BudgetLimits{}, corrupt(k, "budget limits: %v", err)
	}
	return l, nil
}
