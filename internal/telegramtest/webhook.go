package telegramtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/mymmrac/telego"
)

// PostWebhook delivers m, a group message from user 5, to the bot whose
// webhook is at url, as Telegram does: the update id in the body and the
// secret in its header. It fails unless the bot answers 200. The client's
// minute is a hang guard only: a loaded CI machine is slow.
func PostWebhook(url, secret string, updateID int, m *telego.Message) error {
	text, err := json.Marshal(m.Text)
	if err != nil {
		return err
	}
	body := fmt.Sprintf(`{"update_id": %d, "message": {"message_id": %d, "date": 0, "chat": {"id": %d, "type": "supergroup"}, "from": {"id": 5, "is_bot": false, "first_name": "U"}, "text": %s}}`,
		updateID, m.MessageID, m.Chat.ID, text)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set(telego.WebhookSecretTokenHeader, secret)
	client := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
