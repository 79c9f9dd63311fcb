package plugin

import "context"

// ConsumerConfig configures the spending side.
type ConsumerConfig struct{}

// initConsumer builds the consumer.
func (p *Plugin) initConsumer(context.Context) error {
	return nil
}
