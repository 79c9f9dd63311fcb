package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// funcs are the template helpers.
var funcs = template.FuncMap{
	"revenueChart":  revenueChart,
	"activityChart": activityChart,
	"sats":          sats,
	"short":         short,
	"ago":           ago,
	"pct":           pct,
	"conversion":    func(settled, created uint64) string { return pct(int64(settled), int64(created)) },
	"msatToSats":    func(m int64) int64 { return m / 1000 },
}

const (
	chartW, chartH = 720, 180
	padL, padB     = 48, 22
)

// revenueChart draws daily revenue as SVG bars.
func revenueChart(days []dayPoint) template.HTML {
	vals := make([]int64, len(days))
	for i, d := range days {
		vals[i] = d.RevenueSats
	}
	return bars("revenue-chart", "Revenue per day (sats)", days, [][]int64{vals}, []string{"#f7931a"})
}

// activityChart draws challenges issued beside challenges settled.
func activityChart(days []dayPoint) template.HTML {
	created := make([]int64, len(days))
	settled := make([]int64, len(days))
	for i, d := range days {
		created[i], settled[i] = d.Created, d.Settled
	}
	return bars("activity-chart", "Challenges issued and settled per day", days, [][]int64{created, settled}, []string{"#8aa4c8", "#2e8b57"})
}

// bars renders grouped bar series over days as an accessible SVG.
func bars(id, title string, days []dayPoint, series [][]int64, colors []string) template.HTML {
	var max int64 = 1
	for _, s := range series {
		for _, v := range s {
			max = maxInt(max, v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" role="img" aria-label="%s" viewBox="0 0 %d %d" width="100%%" xmlns="http://www.w3.org/2000/svg">`, id, template.HTMLEscapeString(title), chartW, chartH)
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	plotW, plotH := float64(chartW-padL-4), float64(chartH-padB-6)
	// Gridlines at 0, ½ and the maximum.
	for _, f := range []float64{0, .5, 1} {
		y := 6 + plotH*(1-f)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, padL, chartW-4, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#666">%d</text>`, padL-4, y+3, int64(float64(max)*f))
	}
	n := max1(len(days))
	slot := plotW / float64(n)
	barW := slot * 0.8 / float64(max1(len(series)))
	for i, d := range days {
		for s, vals := range series {
			v := vals[i]
			h := plotH * float64(v) / float64(max)
			x := float64(padL) + slot*float64(i) + slot*0.1 + barW*float64(s)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d</title></rect>`,
				x, 6+plotH-h, barW, h, colors[s%len(colors)], d.Day.Format("Jan 2"), v)
		}
		if i%5 == 0 || i == len(days)-1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#666">%s</text>`,
				float64(padL)+slot*(float64(i)+0.5), chartH-6, d.Day.Format("Jan 2"))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func maxInt(a, b int64) int64 {
	if b > a {
		return b
	}
	return a
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// sats formats a number of satoshis with thousands separators.
func sats(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// short abbreviates a long hex string.
func short(s string) string {
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}

// ago renders how long ago t was.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// pct is part of whole in percent, 0 when whole is 0.
func pct(part, whole int64) string {
	if whole <= 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
}
