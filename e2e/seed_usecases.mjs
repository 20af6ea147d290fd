// The three JavaScript use cases of the customer-facing API reference
// (shared/seed/api-reference.de.txt, "Anwendungsfälle"), run against a
// started server. The seed's functions are kept as they are; only the host
// (BASE_URL) and the placeholders (CLIENT_ID, CLIENT_SECRET, the assistant
// ids, the PDF) are filled in. Around them, setup creates the assistants
// and knowledge the examples assume, and checks assert that every message
// gets a real answer. Exit code 0: all passed.
//
//   BASE_URL=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... PDF=path/to/manual.pdf node e2e/seed_usecases.mjs
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

const BASE = process.env.BASE_URL.replace(/\/$/, '');
const YOUR_CLIENT_ID = process.env.CLIENT_ID;
const YOUR_CLIENT_SECRET = process.env.CLIENT_SECRET;
const api = (path) => BASE + path;

// ---- setup helpers (not part of the seed) ----
async function admin(method, path, body) {
  const response = await fetch(api(path), {
    method,
    headers: { 'X-API-Key': YOUR_CLIENT_ID, 'X-API-Secret': YOUR_CLIENT_SECRET, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json.data;
}

async function untilReady(id) {
  for (let i = 0; i < 300; i++) {
    const k = await admin('GET', `/api/v1/knowledge/${id}`);
    if (k.status !== 'processing') return k;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`knowledge ${id} still processing`);
}

function assertAnswered(result, what, expect) {
  assert.equal(result.status, 'success', `${what}: ${JSON.stringify(result)}`);
  assert.equal(result.data.role, 'user', what);
  assert.equal(result.data.reply_status, 'completed', `${what}: ${JSON.stringify(result.data)}`);
  const reply = result.data.reply;
  assert.equal(reply.role, 'assistant', what);
  assert.ok(reply.content.length > 0, `${what}: empty reply`);
  if (expect) assert.match(reply.content, expect, `${what}: ${reply.content}`);
  console.log(`${what}\n  Q: ${result.data.content}\n  A: ${reply.content}\n  sources: ${reply.sources.map((s) => s.title).join(', ') || '(none)'}`);
  return reply;
}

async function addText(title, text) {
  const form = new FormData();
  form.append('title', title);
  form.append('file_type', 'txt');
  form.append('file', new Blob([text], { type: 'text/plain' }), 'text.txt');
  const response = await fetch(api('/api/v1/knowledge/files/'), {
    method: 'POST',
    headers: { 'X-API-Key': YOUR_CLIENT_ID, 'X-API-Secret': YOUR_CLIENT_SECRET },
    body: form,
  });
  const json = await response.json();
  assert.ok(response.ok, JSON.stringify(json));
  return untilReady(json.data.id);
}

// =====================================================================
// Use case 1: Kundensupport Chatbot (seed functions, host replaced)
// =====================================================================
// 1. Widget-Token für browserbasierten Chat abrufen
async function getWidgetToken() {
  const response = await fetch(api('/api/v1/auth/widget-token'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_id: YOUR_CLIENT_ID })
  });
  return (await response.json()).token;
}
// 2. Sitzung für anonymen Besucher erstellen
async function startSupportSession(token, assistantId) {
  const response = await fetch(api('/api/v1/sessions/'), {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${token}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      assistant_id: assistantId,
      visitor_id: 'visitor-' + Date.now(),
      metadata: { source: 'support_widget' }
    })
  });
  return await response.json();
}
// 3. Kundennachricht senden und KI-Antwort erhalten
async function sendMessage(token, sessionId, message) {
  const response = await fetch(api(`/api/v1/sessions/${sessionId}/messages`), {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${token}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      content: message,
      metadata: { user_type: 'customer' }
    })
  });
  return await response.json();
}

// =====================================================================
// Use case 2: E-Commerce Produktassistent (seed functions, host replaced)
// =====================================================================
// 1. Benutzerkontext für Personalisierung erstellen
async function createUserContext(userId, userData) {
  const response = await fetch(api('/api/v1/contexts/'), {
    method: 'POST',
    headers: {
      'X-API-Key': YOUR_CLIENT_ID,
      'X-API-Secret': YOUR_CLIENT_SECRET,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      user_reference: userId,
      traits: {
        name: userData.name,
        purchase_history: userData.purchases,
        preferences: userData.preferences
      }
    })
  });
  return await response.json();
}
// 2. Persistente Konversation mit Kontext erstellen
async function startPersonalizedChat(assistantId, userId) {
  const response = await fetch(api('/api/v1/conversations/'), {
    method: 'POST',
    headers: {
      'X-API-Key': YOUR_CLIENT_ID,
      'X-API-Secret': YOUR_CLIENT_SECRET,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      assistant_id: assistantId,
      customer_id: userId,
      user_context_id: userId,
      title: 'Product Recommendations',
      metadata: { source: 'product_page' }
    })
  });
  return await response.json();
}
// 3. Mit Produktwissen chatten
async function askAboutProduct(conversationId, question) {
  const response = await fetch(api(`/api/v1/conversations/${conversationId}/messages`), {
    method: 'POST',
    headers: {
      'X-API-Key': YOUR_CLIENT_ID,
      'X-API-Secret': YOUR_CLIENT_SECRET,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      content: question,
      metadata: { context: 'product_inquiry' }
    })
  });
  return await response.json();
}

// =====================================================================
// Use case 3: Wissensmanagementsystem (seed functions, host replaced)
// =====================================================================
// 1. Produktdokumentation hochladen
async function uploadDocumentation(file, title) {
  const formData = new FormData();
  formData.append('title', title);
  formData.append('file_type', 'pdf');
  formData.append('file', file);
  const response = await fetch(api('/api/v1/knowledge/files/'), {
    method: 'POST',
    headers: {
      'X-API-Key': YOUR_CLIENT_ID,
      'X-API-Secret': YOUR_CLIENT_SECRET
    },
    body: formData
  });
  return await response.json();
}
// 2. FAQ-Einträge hinzufügen
async function addFAQ(question, answer, tags) {
  const response = await fetch(api('/api/v1/knowledge/qa/'), {
    method: 'POST',
    headers: {
      'X-API-Key': YOUR_CLIENT_ID,
      'X-API-Secret': YOUR_CLIENT_SECRET,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      question,
      answer,
      tags,
      source: 'manual'
    })
  });
  return await response.json();
}
// 3. Webinhalt hinzufügen
async function addWebContent(url, title) {
  const response = await fetch(api('/api/v1/knowledge/urls/'), {
    method: 'POST',
    headers: {
      'X-API-Key': YOUR_CLIENT_ID,
      'X-API-Secret': YOUR_CLIENT_SECRET,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      url,
      title
    })
  });
  return await response.json();
}

// =====================================================================
// Runs
// =====================================================================
async function supportChatbot() {
  const assistant = await admin('POST', '/api/v1/assistants/', {
    name: 'Support-Bot', tone: 'friendly', language: 'de', default_tasks: ['answer_questions', 'provide_support'], is_active: true,
  });
  await addText('Hilfe zu Bestellungen',
    'Bestellungen\nDen Status Ihrer Bestellung sehen Sie jederzeit in Ihrem Konto unter „Meine Bestellungen“. ' +
    'Dort können Sie eine Bestellung auch stornieren, solange sie noch nicht versendet wurde.\n\n' +
    'Versand\nPakete werden innerhalb von zwei Werktagen zugestellt.');
  // Verwendungsbeispiel (as in the seed, with a real assistant id)
  const token = await getWidgetToken();
  assert.ok(token, 'widget token');
  const session = await startSupportSession(token, assistant.id);
  assert.equal(session.status, 'success', JSON.stringify(session));
  const result = await sendMessage(token, session.data.id, 'Ich brauche Hilfe bei meiner Bestellung');
  const reply = assertAnswered(result, 'Kundensupport Chatbot', /Bestellung/);
  assert.ok(reply.sources.length > 0, 'the answer cites the order help');
}

async function productAssistant() {
  const assistant = await admin('POST', '/api/v1/assistants/', {
    name: 'Produktberater', tone: 'casual', language: 'de', default_tasks: ['recommend_products'], is_active: true,
  });
  await addText('Laptop-Ratgeber',
    'Laptops\nUnser meistempfohlener Laptop ist das UltraBook 14: 1,2 kg leicht und mit 18 Stunden Akkulaufzeit. ' +
    'Für Gaming empfehlen wir das PowerBook 17 mit dedizierter Grafikkarte.');
  // Verwendungsbeispiel (as in the seed)
  await createUserContext('user-123', {
    name: 'Alice',
    purchases: ['laptop-1', 'mouse-2'],
    preferences: { category: 'electronics' }
  });
  const conversation = await startPersonalizedChat(assistant.id, 'user-123');
  assert.equal(conversation.status, 'success', JSON.stringify(conversation));
  const result = await askAboutProduct(conversation.data.id, 'Welchen Laptop empfiehlst du?');
  assertAnswered(result, 'E-Commerce Produktassistent', /UltraBook 14/);
}

async function knowledgeManagement() {
  const pdfFile = new Blob([readFileSync(process.env.PDF)], { type: 'application/pdf' });
  // Verwendungsbeispiel (as in the seed)
  const fileUpload = await uploadDocumentation(pdfFile, 'User Manual v2.0');
  const faq = await addFAQ(
    'Wie setze ich mein Passwort zurück?',
    'Gehe zu Einstellungen und klicke auf "Passwort zurücksetzen"...',
    ['password', 'security']
  );
  const webContent = await addWebContent(
    'https://example.tech/blog/new-features',
    'Neuigkeiten zu neuen Funktionen'
  );
  for (const r of [fileUpload, faq, webContent]) assert.equal(r.status, 'success', JSON.stringify(r));
  assert.equal((await untilReady(fileUpload.data.id)).status, 'ready');
  await untilReady(faq.data.id);
  // The knowledge answers: a German FAQ, and the English PDF manual.
  const assistant = await admin('POST', '/api/v1/assistants/', {
    name: 'Customer Support Bot', description: 'Helpful assistant for customer inquiries', tone: 'professional',
    language: 'en', default_tasks: ['answer_questions', 'provide_support'], is_active: true,
  });
  const session = await admin('POST', '/api/v1/sessions/', { assistant_id: assistant.id, visitor_id: 'visitor-123', locale: 'en' });
  const ask = async (q) => (await fetch(api(`/api/v1/sessions/${session.id}/messages`), {
    method: 'POST',
    headers: { 'X-API-Key': YOUR_CLIENT_ID, 'X-API-Secret': YOUR_CLIENT_SECRET, 'Content-Type': 'application/json' },
    body: JSON.stringify({ content: q }),
  })).json();
  assertAnswered(await ask('Wie setze ich mein Passwort zurück?'), 'Wissensmanagement: FAQ', /Einstellungen/);
  const manual = assertAnswered(await ask('How do I reset the admin password?'), 'Wissensmanagement: PDF', /reset button/);
  assert.equal(manual.sources[0].title, 'User Manual v2.0');
  assertAnswered(await ask('Do you sell garden furniture?'), 'Wissensmanagement: unknown', /could not find/);
}

await supportChatbot();
await productAssistant();
await knowledgeManagement();
console.log('all three use cases answered');
