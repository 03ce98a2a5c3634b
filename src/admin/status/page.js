// The live tail: each streamed event is added as text (never as HTML), newest on top.
const tail = document.getElementById('tail');
const es = new EventSource('/status/events');
es.onmessage = (m) => {
  const e = JSON.parse(m.data);
  const li = document.createElement('li');
  li.textContent = new Date(e.received_at_ms).toISOString().slice(11, 19) + ' ' + e.topic + ' ' + e.summary;
  tail.prepend(li);
  while (tail.children.length > 200) tail.lastChild.remove();
};
const live = document.getElementById('live');
const note = live.textContent;
es.onopen = () => { live.textContent = note; };
es.onerror = () => { live.textContent = '(live tail disconnected; retrying)'; };
