
(function () {
  var box = document.getElementById("try-it");
  var canvas = document.getElementById("digit");
  if (!box || !canvas || !window.fetch || !canvas.getContext) return;
  var context = canvas.getContext("2d");
  if (!context) return;
  var rows = Number(box.dataset.height);
  var columns = Number(box.dataset.width);
  var status = document.getElementById("try-it-status");
  var label = document.getElementById("prediction-label");
  var bars = document.getElementById("probabilities");
  var predictButton = document.getElementById("predict");
  var drawing = false;
  var drawn = false;
  var last = null;

  function clear() {
    context.fillStyle = "#000";
    context.fillRect(0, 0, canvas.width, canvas.height);
    drawn = false;
    label.textContent = "–";
    while (bars.firstChild) bars.removeChild(bars.firstChild);
    status.textContent = "Draw a digit, white on black, then press Predict.";
  }

  function point(event) {
    var rect = canvas.getBoundingClientRect();
    return {
      x: (event.clientX - rect.left) * canvas.width / rect.width,
      y: (event.clientY - rect.top) * canvas.height / rect.height
    };
  }

  function line(to) {
    context.strokeStyle = "#fff";
    context.lineWidth = canvas.width / 12;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(last.x, last.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    last = to;
    drawn = true;
  }

  canvas.addEventListener("pointerdown", function (event) {
    drawing = true;
    last = point(event);
    line(last);
    if (canvas.setPointerCapture) canvas.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!drawing) return;
    line(point(event));
    event.preventDefault();
  });
  canvas.addEventListener("pointerup", function () { drawing = false; });
  canvas.addEventListener("pointercancel", function () { drawing = false; });

  // The model's input: the canvas averaged over equal blocks, one per input
  // value (the canvas is a whole multiple of the input's size), in [0, 1].
  function inputs() {
    var data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    var blockWidth = Math.floor(canvas.width / columns);
    var blockHeight = Math.floor(canvas.height / rows);
    var values = [];
    for (var row = 0; row < rows; row++) {
      for (var column = 0; column < columns; column++) {
        var sum = 0;
        for (var y = row * blockHeight; y < (row + 1) * blockHeight; y++) {
          for (var x = column * blockWidth; x < (column + 1) * blockWidth; x++) {
            sum += data[(y * canvas.width + x) * 4];
          }
        }
        values.push(Math.round(sum / (blockWidth * blockHeight) / 255 * 10000) / 10000);
      }
    }
    return values;
  }

  function failure(response, body) {
    var message = body && body.error && body.error.message ? body.error.message : response.statusText;
    var text = response.status + ": " + message;
    var wait = response.headers.get("Retry-After");
    if (response.status === 429 && wait) text += " (try again in " + wait + " s)";
    return new Error(text);
  }

  function show(answer) {
    var item = answer.predictions[0];
    label.textContent = String(item.label);
    while (bars.firstChild) bars.removeChild(bars.firstChild);
    item.probabilities.forEach(function (probability, index) {
      var entry = document.createElement("li");
      if (index === item.label) entry.className = "top";
      var name = document.createElement("span");
      name.textContent = String(index);
      var meter = document.createElement("meter");
      meter.min = 0;
      meter.max = 1;
      meter.value = probability;
      var share = document.createElement("span");
      share.className = "num";
      share.textContent = (probability * 100).toFixed(1) + "%";
      entry.appendChild(name);
      entry.appendChild(meter);
      entry.appendChild(share);
      bars.appendChild(entry);
    });
    status.textContent = "The model reads " + item.label + ". Free tier: nothing was charged.";
  }

  function predict() {
    if (!drawn) {
      status.textContent = "Draw something first.";
      return;
    }
    predictButton.disabled = true;
    status.textContent = "Asking the model…";
    fetch(box.dataset.predict, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ inputs: [inputs()] }),
      cache: "no-store"
    })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          if (!response.ok) throw failure(response, body);
          return body;
        });
      })
      .then(show)
      .catch(function (error) { status.textContent = error.message || String(error); })
      .then(function () { predictButton.disabled = false; });
  }

  document.getElementById("clear").addEventListener("click", clear);
  predictButton.addEventListener("click", predict);
  document.getElementById("try-it-nojs").hidden = true;
  box.hidden = false;
  clear();
})();
