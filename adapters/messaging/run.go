package messaging

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

func (r *Runtime) run(ctx context.Context) error {
	logger := watermill.NewSlogLoggerWithLevelMapping(r.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, logger)
	if err != nil {
		return err
	}
	router.AddMiddleware(middleware.CorrelationID)
	if r.cfg.registerer != nil {
		wmetrics.NewPrometheusMetricsBuilder(r.cfg.registerer, "companin", "router").AddPrometheusRouterMetrics(router)
	}
	retry := middleware.Retry{
		MaxRetries:      r.cfg.retries,
		InitialInterval: r.cfg.retryInterval,
		MaxInterval:     r.cfg.redeliveryMax,
		Multiplier:      2,
		Logger:          logger,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !errors.Is(p.Err, context.Canceled)
		},
	}

	r.mu.Lock()
	var leaders []*logConsumer
	var subs []message.Subscriber
	for _, c := range r.projections {
		c.grant = make(chan context.Context, 1)
		leaders = append(leaders, c)
	}
	for _, w := range r.workers {
		leaders = append(leaders, w.disp)
	}
	for _, c := range leaders {
		s := newLogSubscriber(r, c)
		subs = append(subs, s)
		h := router.AddConsumerHandler(c.kind+":"+c.name, c.name, s, r.logHandler(c))
		// Recoverer inside Retry: a panic is an error, retried like one.
		h.AddMiddleware(retry.Middleware, middleware.Recoverer)
	}
	for _, w := range r.workers {
		s := &jobSubscriber{w: w, closing: make(chan struct{})}
		subs = append(subs, s)
		// No in-process retry: a failed attempt goes back to the jobs table
		// with a backoff, where any process may take it.
		h := router.AddConsumerHandler("worker:"+w.name, w.name, s, w.handler)
		h.AddMiddleware(middleware.Recoverer)
	}
	r.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.notify.run(ctx) }()
	go func() { defer wg.Done(); r.lead(ctx, leaders) }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		if err := router.Close(); err != nil {
			r.log.Error("messaging: close router", "error", err)
		}
	}()
	err = router.Run(ctx)
	cancel()
	wg.Wait()
	for _, s := range subs {
		_ = s.Close()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
