package plugin

import "context"

// ConsumerConfig configures the spending side.
type ConsumerConfig struct{}

// consumerParts are the consumer's pieces inside a Plugin.
type consumerParts struct{}

// initConsumer builds the consumer.
func (p *Plugin) initConsumer(context.Context) error {
	return nil
}
