package projections_test

import (
	"testing"
	"time"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/widgetconfig"
	"github.com/companin/companin/projections"
	"github.com/companin/companin/queries"
)

func TestWidgetConfigsProjectionAndRebuild(t *testing.T) {
	ctx, store, pool := setup(t)
	created, err := commands.New(commands.Deps{Store: store}).CreateWidgetConfig.Handle(ctx, commands.CreateWidgetConfig{
		Input: widgetconfig.Input{Title: str("Shop help"), AllowedOrigins: &[]string{"https://shop.example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = commands.New(commands.Deps{Store: store}).UpdateWidgetConfig.Handle(ctx, commands.UpdateWidgetConfig{
		ID: created.ID, Input: widgetconfig.Input{Greeting: str("Hallo!"), Position: str("bottom-left")}})
	if err != nil {
		t.Fatal(err)
	}
	p := projections.WidgetConfigs{}
	read := func() queries.WidgetConfig {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := messaging.CatchUp(ctx, store, pool, p); err != nil {
				t.Fatal(err)
			}
			c, err := queries.New(pool).GetWidgetConfig.Handle(ctx, "org-1", created.ID)
			if err == nil && c.Greeting == "Hallo!" {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("read model never showed the update (%v): %+v", err, c)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c := read()
	if c.Title != "Shop help" || c.Position != "bottom-left" || len(c.AllowedOrigins) != 1 {
		t.Fatalf("projected: %+v", c)
	}
	if _, err := queries.New(pool).GetWidgetConfig.Handle(ctx, "org-2", created.ID); err == nil {
		t.Fatal("another organization reads the configuration")
	}
	if err := messaging.Rebuild(ctx, store, pool, []messaging.Projection{p}, p.Name()); err != nil {
		t.Fatal(err)
	}
	if again := read(); again.Title != c.Title || again.Greeting != c.Greeting || !again.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("rebuild changed the read model: %+v vs %+v", again, c)
	}
}
